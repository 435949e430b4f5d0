package auth

import (
	"fmt"
	"testing"

	"github.com/ringcache/ringcache/internal/config"
)

func TestPolicy_NamesRememberedAreBounded(t *testing.T) {
	p, err := compile(&config.Auth{Principals: map[string]config.Grant{"n-*": {Peer: true, Rate: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxCachedNames + 500 {
		for _, name := range []string{fmt.Sprintf("n-%d", i), fmt.Sprintf("other-%d", i)} {
			g := p.grantOf(Principal{Name: name, Kind: Certificate, Node: true})
			if want := name[0] == 'n'; g.peer != want {
				t.Fatalf("%s: peer = %v, want %v", name, g.peer, want)
			}
		}
	}
	if n := len(*p.names.Load()); n != maxCachedNames {
		t.Errorf("%d names remembered, want the bound %d", n, maxCachedNames)
	}
	// Past the bound, names share their glob's limiter instead of a new one.
	a := p.grantOf(Principal{Name: "n-999999", Kind: Certificate})
	b := p.grantOf(Principal{Name: "n-999998", Kind: Certificate})
	if a.lim == nil || a.lim != b.lim {
		t.Error("names past the bound do not share the glob's limiter")
	}
	if c := p.grantOf(Principal{Name: "n-1", Kind: Certificate}); c.lim == a.lim {
		t.Error("a remembered name shares the overflow limiter")
	}
}
