package strategy

// ChangeHook is told the key of every change to a namespace's cached value
// on this node: Set, Delete, leased Set, write-through and write-behind
// writes, and loads and refreshes that install a value. It is called after
// the store holds the change (so a reader told of it reads the new value),
// on the writer's goroutine: it must not block. A call may be spurious (a
// write that failed); a change is never left unreported.
type ChangeHook func(namespace, key string)

// changed reports a change of key to the hook, if any.
func (n *Namespace) changed(key string) {
	if n.onChange != nil {
		n.onChange(n.p.Name, key)
	}
}
