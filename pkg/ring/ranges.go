package ring

// SlotRange is a run of contiguous slots with one owner, as CLUSTER SLOTS
// lists them.
type SlotRange struct {
	First, Last uint16 // inclusive
	Owner       Member
}

// SlotRanges returns the table as maximal runs of contiguous slots with
// one owner, in slot order. Every slot is in exactly one range.
func (r *Ring) SlotRanges() []SlotRange {
	per := Slots / len(r.owners)
	var out []SlotRange
	for start := 0; start < len(r.owners); {
		end := start + 1
		for end < len(r.owners) && r.owners[end] == r.owners[start] {
			end++
		}
		out = append(out, SlotRange{First: uint16(start * per), Last: uint16(end*per - 1), Owner: r.members[r.owners[start]]})
		start = end
	}
	return out
}

// Move is one partition whose owner differs between two tables.
type Move struct {
	Partition int
	From, To  Member
}

// Diff lists the partitions whose owner differs between old and new, in
// partition order. Tables of different partition counts share no partition
// identity, so every partition of new counts as moved, from no one.
func Diff(old, new *Ring) []Move {
	var moves []Move
	for p := range new.owners {
		if len(old.owners) != len(new.owners) {
			moves = append(moves, Move{Partition: p, To: new.PartitionOwner(p)})
		} else if from, to := old.PartitionOwner(p), new.PartitionOwner(p); from.Name != to.Name {
			moves = append(moves, Move{Partition: p, From: from, To: to})
		}
	}
	return moves
}
