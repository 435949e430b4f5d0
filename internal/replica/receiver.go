package replica

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/ringcache/ringcache/internal/journal"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Receiver is the replica's side: it serves Peer.Replicate streams and
// stores their frames in the node's journal as copies of their origin's
// records.
type Receiver struct {
	// Journal keeps the copies.
	Journal *journal.Journal
	Clock   Clock
	// Self is this node's name: a stream from itself is refused.
	Self string
	// Hello, when set, is told the origin of every stream that opens.
	Hello func(journal.Origin)
	// Applied, when set, is told the origin of every frame stored.
	Applied func(journal.Origin)
	// Stop, when closed, ends every stream (the node has left its cluster
	// and stops serving).
	Stop   <-chan struct{}
	Logger *slog.Logger
}

// Errors a stream ends with; the Peer service maps them to statuses.
var (
	// ErrBadStream: the stream broke the protocol (no hello first, a hello
	// later, a frame out of order).
	ErrBadStream = errors.New("bad replication stream")
	// ErrStopping: the node is stopping and takes no more copies.
	ErrStopping = errors.New("node stopping: it takes no more replica copies")
)

// Stream is the server side of one Peer.Replicate stream.
type Stream interface {
	Send(*pb.ReplicateResponse) error
	Recv() (*pb.ReplicateRequest, error)
}

// Serve runs one stream until the origin closes it, it fails, or Stop. A
// frame is answered only once its copies are on disk.
func (r *Receiver) Serve(s Stream) error {
	hello, err := s.Recv()
	if err != nil {
		return err
	}
	h := hello.GetHello()
	if h == nil {
		return fmt.Errorf("%w: the first message must be a hello", ErrBadStream)
	}
	o := journal.Origin{Node: h.GetOrigin(), ID: h.GetJournalId()}
	if o.Node == r.Self {
		return fmt.Errorf("%w: %s replicating to itself", ErrBadStream, o.Node)
	}
	if err := r.Clock.Observe(h.GetHlc()); err != nil {
		return err
	}
	id, err := r.Journal.ID()
	if err != nil {
		return err
	}
	if r.Hello != nil {
		r.Hello(o)
	}
	if err := s.Send(&pb.ReplicateResponse{Hlc: r.Clock.Now(), JournalId: id}); err != nil {
		return err
	}
	frames := make(chan *pb.ReplicateRequest)
	failed := make(chan error, 1)
	go func() { // Recv blocks; the loop below must also see Stop
		for {
			f, err := s.Recv()
			if err != nil {
				failed <- err
				return
			}
			select {
			case frames <- f:
			case <-r.Stop:
				return
			}
		}
	}()
	var last uint64
	for {
		var f *pb.ReplicateRequest
		select {
		case <-r.Stop:
			return ErrStopping
		case err := <-failed:
			if errors.Is(err, io.EOF) {
				return nil // the origin closed the stream
			}
			return err
		case f = <-frames:
		}
		if f.GetHello() != nil || f.GetSeq() != last+1 {
			return fmt.Errorf("%w: frame %d after %d", ErrBadStream, f.GetSeq(), last)
		}
		last = f.GetSeq()
		resp, err := r.apply(o, f)
		if err != nil {
			return err
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

// apply stores one frame and returns its answer.
func (r *Receiver) apply(o journal.Origin, f *pb.ReplicateRequest) (*pb.ReplicateResponse, error) {
	if err := r.Clock.Observe(f.GetHlc()); err != nil {
		return nil, err
	}
	ops := make([]journal.ReplicaOp, 0, len(f.GetRecords())+len(f.GetFlushed()))
	for _, p := range f.GetRecords() {
		ops = append(ops, journal.ReplicaOp{Record: FromProto(p)})
	}
	for _, p := range f.GetFlushed() {
		ops = append(ops, journal.ReplicaOp{Record: journal.Record{Namespace: p.GetNamespace(), Key: p.GetKey(), Version: p.GetVersion()}, Drop: true})
	}
	resp := &pb.ReplicateResponse{Seq: f.GetSeq()}
	res, err := r.Journal.ApplyReplica(o, ops)
	switch {
	case errors.Is(err, journal.ErrFull): // a full disk: nothing of the frame is stored
		for i := range f.GetRecords() {
			resp.Refused = append(resp.Refused, uint32(i))
		}
		resp.RefusedReason = err.Error()
	case err != nil:
		return nil, err
	default:
		var reasons []string
		for i := range f.GetRecords() {
			if e := res.Refused[i]; e != nil {
				resp.Refused = append(resp.Refused, uint32(i))
				if len(reasons) == 0 {
					reasons = append(reasons, e.Error())
				}
			}
		}
		resp.RefusedReason = strings.Join(reasons, "; ")
		if r.Applied != nil {
			r.Applied(o)
		}
	}
	resp.Hlc = r.Clock.Now()
	return resp, nil
}
