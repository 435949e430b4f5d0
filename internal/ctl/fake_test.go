package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// fakeNode is an in-memory Cache and Admin server. Namespace "x" is not
// configured, Locate of namespace "slow" blocks until the caller gives up,
// and GetMany fails the key "bad". Without a journal (or with one not
// enabled) the journal RPCs other than Journal fail FAILED_PRECONDITION, as
// a node without write-behind does.
type fakeNode struct {
	ringcachev1.UnimplementedCacheServer
	ringcachev1.UnimplementedAdminServer

	name    string
	members []*ringcachev1.Member
	ring    *ringcachev1.RingResponse
	stats   *ringcachev1.StatsResponse

	journal  *ringcachev1.JournalResponse
	flush    *ringcachev1.FlushJournalResponse
	flushErr error

	mu         sync.Mutex
	data       map[string][]byte
	lastSet    *ringcachev1.SetRequest
	statsCalls int
	dead       []*ringcachev1.DeadLetter
	deadLimit  uint32
	// actions records "retry ns/key" and "drop ns/key" calls that succeeded.
	actions    []string
	flushCalls int
}

func newFakeNode(name string) *fakeNode {
	return &fakeNode{name: name, data: map[string][]byte{}, stats: &ringcachev1.StatsResponse{Node: name}}
}

func checkNamespace(ns string) error {
	if ns == "x" {
		return status.Errorf(codes.NotFound, "namespace %q is not configured", ns)
	}
	return nil
}

func (f *fakeNode) Get(_ context.Context, r *ringcachev1.GetRequest) (*ringcachev1.GetResponse, error) {
	if err := checkNamespace(r.GetNamespace()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.data[r.GetNamespace()+"/"+r.GetKey()]
	return &ringcachev1.GetResponse{Found: ok, Value: v}, nil
}

func (f *fakeNode) GetMany(_ context.Context, r *ringcachev1.GetManyRequest) (*ringcachev1.GetManyResponse, error) {
	if err := checkNamespace(r.GetNamespace()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &ringcachev1.GetManyResponse{}
	for _, k := range r.GetKeys() {
		if k == "bad" {
			resp.Results = append(resp.Results, &ringcachev1.KeyResult{
				Key: k, ErrorCode: int32(codes.InvalidArgument), ErrorMessage: "key too long"})
			continue
		}
		v, ok := f.data[r.GetNamespace()+"/"+k]
		resp.Results = append(resp.Results, &ringcachev1.KeyResult{Key: k, Found: ok, Value: v})
	}
	return resp, nil
}

func (f *fakeNode) Set(_ context.Context, r *ringcachev1.SetRequest) (*ringcachev1.SetResponse, error) {
	if err := checkNamespace(r.GetNamespace()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[r.GetNamespace()+"/"+r.GetKey()] = r.GetValue()
	f.lastSet = r
	return &ringcachev1.SetResponse{}, nil
}

func (f *fakeNode) Delete(_ context.Context, r *ringcachev1.DeleteRequest) (*ringcachev1.DeleteResponse, error) {
	if err := checkNamespace(r.GetNamespace()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.data, r.GetNamespace()+"/"+r.GetKey())
	return &ringcachev1.DeleteResponse{}, nil
}

func (f *fakeNode) Members(context.Context, *ringcachev1.MembersRequest) (*ringcachev1.MembersResponse, error) {
	return &ringcachev1.MembersResponse{Self: f.name, Members: f.members}, nil
}

func (f *fakeNode) Ring(context.Context, *ringcachev1.RingRequest) (*ringcachev1.RingResponse, error) {
	return f.ring, nil
}

func (f *fakeNode) Locate(ctx context.Context, r *ringcachev1.LocateRequest) (*ringcachev1.LocateResponse, error) {
	if r.GetNamespace() == "slow" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err := checkNamespace(r.GetNamespace()); err != nil {
		return nil, err
	}
	return &ringcachev1.LocateResponse{Partition: 42, Owner: "n2", OwnerGrpcAddr: "127.0.0.1:7102"}, nil
}

func (f *fakeNode) Stats(context.Context, *ringcachev1.StatsRequest) (*ringcachev1.StatsResponse, error) {
	f.mu.Lock()
	f.statsCalls++
	f.mu.Unlock()
	return f.stats, nil
}

func (f *fakeNode) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statsCalls
}

func (f *fakeNode) noJournal() error {
	if f.journal == nil || !f.journal.GetEnabled() {
		return status.Error(codes.FailedPrecondition, "this node has no write-behind namespace, so no journal")
	}
	return nil
}

func (f *fakeNode) Journal(context.Context, *ringcachev1.JournalRequest) (*ringcachev1.JournalResponse, error) {
	if f.journal == nil {
		return &ringcachev1.JournalResponse{Node: f.name}, nil
	}
	return f.journal, nil
}

func (f *fakeNode) FlushJournal(context.Context, *ringcachev1.FlushJournalRequest) (*ringcachev1.FlushJournalResponse, error) {
	f.mu.Lock()
	f.flushCalls++
	f.mu.Unlock()
	if err := f.noJournal(); err != nil {
		return nil, err
	}
	if f.flushErr != nil {
		return nil, f.flushErr
	}
	return f.flush, nil
}

func (f *fakeNode) DeadLetters(_ context.Context, r *ringcachev1.DeadLettersRequest) (*ringcachev1.DeadLettersResponse, error) {
	if err := f.noJournal(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deadLimit = r.GetLimit()
	limit := int(r.GetLimit())
	if limit == 0 {
		limit = 100
	}
	return &ringcachev1.DeadLettersResponse{DeadLetters: f.dead[:min(limit, len(f.dead))]}, nil
}

// takeDead removes the dead letter of ns/key and records the action.
func (f *fakeNode) takeDead(action, ns, key string) error {
	if err := f.noJournal(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.dead, func(d *ringcachev1.DeadLetter) bool {
		return d.GetNamespace() == ns && d.GetKey() == key
	})
	if i < 0 {
		return status.Errorf(codes.NotFound, "journal: not found: %s/%s", ns, key)
	}
	f.dead = slices.Delete(f.dead, i, i+1)
	f.actions = append(f.actions, action+" "+ns+"/"+key)
	return nil
}

func (f *fakeNode) RetryDeadLetter(_ context.Context, r *ringcachev1.RetryDeadLetterRequest) (*ringcachev1.RetryDeadLetterResponse, error) {
	if err := f.takeDead("retry", r.GetNamespace(), r.GetKey()); err != nil {
		return nil, err
	}
	return &ringcachev1.RetryDeadLetterResponse{}, nil
}

func (f *fakeNode) DropDeadLetter(_ context.Context, r *ringcachev1.DropDeadLetterRequest) (*ringcachev1.DropDeadLetterResponse, error) {
	if err := f.takeDead("drop", r.GetNamespace(), r.GetKey()); err != nil {
		return nil, err
	}
	return &ringcachev1.DropDeadLetterResponse{}, nil
}

// listen reserves a loopback port; serve starts f on it once f is configured.
func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

func serve(t *testing.T, lis net.Listener, f *fakeNode) {
	t.Helper()
	srv := grpc.NewServer()
	ringcachev1.RegisterCacheServer(srv, f)
	ringcachev1.RegisterAdminServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
}

// startNode serves f and returns its address.
func startNode(t *testing.T, f *fakeNode) string {
	t.Helper()
	lis := listen(t)
	serve(t, lis, f)
	return lis.Addr().String()
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis := listen(t)
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// runCLI runs ringcachectl with args and returns what it wrote.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := NewRootCommand()
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	err = cmd.ExecuteContext(t.Context())
	return out.String(), errb.String(), err
}

// mustRun runs ringcachectl and fails the test when the command fails.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := runCLI(t, "", args...)
	if err != nil {
		t.Fatalf("ringcachectl %s: %v (stderr %q)", strings.Join(args, " "), err, stderr)
	}
	return out
}

var cellSep = regexp.MustCompile(`\s{2,}`)

// rows splits table output into cells; tabwriter pads columns with at least
// two spaces, and no cell in these tests contains two spaces.
func rows(out string) [][]string {
	var rs [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		rs = append(rs, cellSep.Split(strings.TrimSpace(line), -1))
	}
	return rs
}

func assertRows(t *testing.T, out string, want [][]string) {
	t.Helper()
	if got := rows(out); !reflect.DeepEqual(got, want) {
		t.Errorf("table mismatch\n got: %q\nwant: %q\noutput:\n%s", got, want, out)
	}
}

// assertJSON compares two JSON documents by value.
func assertJSON(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expected JSON: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON mismatch\n got: %s\nwant: %s", got, want)
	}
}
