package chaos

import (
	"math"
	"time"

	"github.com/anishathalye/porcupine"
)

// registerInput is one operation on a register: a write of value, or a
// read.
type registerInput struct {
	write bool
	value string
}

// registerModel is a single register per key, starting empty (""): a
// write sets it, a read must return it. The history is partitioned by key.
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range history {
			k := op.Metadata.(string)
			if byKey[k] == nil {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, k := range order {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(registerInput)
		if in.write {
			return true, in.value
		}
		return output.(string) == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(registerInput)
		if in.write {
			return "write " + in.value
		}
		return "read " + output.(string)
	},
}

// linearizabilityTimeout bounds porcupine on one round's history; past it
// the verdict is Unknown.
const linearizabilityTimeout = 20 * time.Second

// checkLinearizable runs porcupine on ops (one namespace, one round).
// Reads that failed say nothing and are left out; writes that were not
// acknowledged may take effect at any time after their invocation, so they
// never return.
func checkLinearizable(ops []Op) porcupine.CheckResult {
	var history []porcupine.Operation
	for _, op := range ops {
		if op.Kind == Read && op.Result != OK {
			continue
		}
		p := porcupine.Operation{ClientId: op.Client, Call: int64(op.Invoke), Return: int64(op.Complete), Metadata: op.Key}
		if op.Kind == Write {
			p.Input = registerInput{write: true, value: op.Value}
			p.Output = ""
			if op.Result != OK {
				p.Return = math.MaxInt64
			}
		} else {
			p.Input = registerInput{}
			p.Output = op.Value // "" when not found
		}
		history = append(history, p)
	}
	if len(history) == 0 {
		return porcupine.Ok
	}
	return porcupine.CheckOperationsTimeout(registerModel, history, linearizabilityTimeout)
}
