package peer

// Queued returns the batches waiting to be sent on the forwarding stream
// to addr (tests wait for them to gather).
func (p *Pool) Queued(addr string) int {
	p.mu.Lock()
	fp := p.pipes[addr]
	p.mu.Unlock()
	if fp == nil {
		return 0
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.cur == nil {
		return 0
	}
	return len(fp.cur.queue)
}
