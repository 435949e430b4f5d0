package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/pgtest"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Issue 13, break 4: a key with a NUL byte was acknowledged by write-behind
// and then dead-lettered (PostgreSQL text rejects it), and read-through
// answered a retryable UNAVAILABLE for it forever. A real ringcached on a
// real PostgreSQL now refuses it up front, in every write mode.
func TestKeys_AKeyPostgreSQLCannotStoreIsInvalidArgument(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	f := newFleet(t, "n1")
	f.launch(f.writeConfig("keys.yaml", fmt.Sprintf(`backends:
  main: {driver: postgres, dsn: %q}
namespaces:
  wt: {backend: main, read: through, write: through}
  wb:
    backend: main
    read: through
    write: behind
    write_behind: {flush_interval: 50ms}
`, dsn)), nil, f.all...)
	f.waitUp(1, f.all...)
	c := dial(t, f.all...)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const bad = "user\x0042"
	for _, ns := range []string{"wt", "wb"} {
		for name, call := range map[string]func() error{
			"Set": func() error {
				_, err := c.cache.Set(ctx, &pb.SetRequest{Namespace: ns, Key: bad, Value: []byte("v")})
				return err
			},
			"Get":    func() error { _, err := c.cache.Get(ctx, &pb.GetRequest{Namespace: ns, Key: bad}); return err },
			"Delete": func() error { _, err := c.cache.Delete(ctx, &pb.DeleteRequest{Namespace: ns, Key: bad}); return err },
		} {
			if err := call(); status.Code(err) != codes.InvalidArgument {
				t.Fatalf("%s %s/%q = %v; want INVALID_ARGUMENT", name, ns, bad, err)
			}
		}
		if _, err := c.cache.Set(ctx, &pb.SetRequest{Namespace: ns, Key: "user-42", Value: []byte("v")}); err != nil {
			t.Fatalf("Set %s/user-42: %v", ns, err)
		}
	}
	eventually(t, drainTimeout, "the journal is flushed, with no dead letter", func() error {
		j, err := c.journal()
		if err == nil && (j.Pending != 0 || j.DeadLetters != 0) {
			err = fmt.Errorf("%d pending, %d dead letters", j.Pending, j.DeadLetters)
		}
		return err
	})
	if n := len(kvRows(t, dsn, "wb", "user")); n != 1 {
		t.Fatalf("%d rows in wb, want the ordinary key's alone", n)
	}
}
