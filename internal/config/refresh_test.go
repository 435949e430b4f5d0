package config_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/config"
)

func TestRefresh_Forms(t *testing.T) {
	for _, tc := range []struct {
		refresh     string
		ahead, beta float64
	}{
		{"refresh: xfetch", 0, config.DefaultXFetchBeta},
		{"refresh: {mode: xfetch}", 0, config.DefaultXFetchBeta},
		{"refresh: {mode: xfetch, beta: 2.5}", 0, 2.5},
		{"refresh: {mode: threshold, ahead: 0.8}", 0.8, 0},
		{"refresh_ahead: 0.8", 0.8, 0}, // the first form, kept
		{"refresh: off", 0, 0},
		{"refresh: {mode: off}", 0, 0},
		{"", 0, 0},
	} {
		doc := "namespaces:\n  users:\n    read: through\n"
		if tc.refresh != "" {
			doc += "    " + tc.refresh + "\n"
		}
		f, err := config.Parse([]byte(doc), "/tmp")
		if err != nil {
			t.Errorf("%s: %v", tc.refresh, err)
			continue
		}
		if ahead, beta := f.Namespaces["users"].RefreshPolicy(); ahead != tc.ahead || beta != tc.beta {
			t.Errorf("%s: RefreshPolicy = %g, %g; want %g, %g", tc.refresh, ahead, beta, tc.ahead, tc.beta)
		}
	}
}

func TestRefresh_BadConfigNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		ns   string
		want []string
	}{
		{"{read: through, refresh: sometimes}", []string{"namespaces.users.refresh.mode", `"sometimes"`, "xfetch"}},
		{"{read: through, refresh: {mode: xfetch, beta: -1}}", []string{"namespaces.users.refresh.beta", "-1"}},
		{"{read: through, refresh: {mode: xfetch, beta: .nan}}", []string{"namespaces.users.refresh.beta"}},
		{"{read: through, refresh: {mode: xfetch, ahead: 0.5}}", []string{"namespaces.users.refresh.ahead", "threshold"}},
		{"{read: through, refresh: {mode: threshold}}", []string{"namespaces.users.refresh.ahead", "(0, 1)"}},
		{"{read: through, refresh: {mode: threshold, ahead: 1}}", []string{"namespaces.users.refresh.ahead"}},
		{"{read: through, refresh: {beta: 2}}", []string{"namespaces.users.refresh.mode", "required"}},
		{"{read: through, refresh: xfetch, refresh_ahead: 0.8}", []string{"namespaces.users.refresh", "refresh_ahead", "keep one"}},
		{"{refresh: xfetch}", []string{"namespaces.users.refresh", "needs read: through"}},
		{"{read: through, refresh: {mode: xfetch, betta: 2}}", []string{"refresh.betta", "unknown key"}},
		{"{read: through, refresh: [xfetch]}", []string{"refresh must be a mode"}},
	} {
		_, err := config.Parse([]byte("namespaces:\n  users: "+tc.ns+"\n"), "/tmp")
		if !errors.Is(err, config.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.ns, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.ns, err, w)
			}
		}
	}
}

// Whatever stands after refresh:, Parse either rejects it or yields one
// refresh mode with its parameter in range.
func FuzzParse_Refresh(f *testing.F) {
	for _, s := range []string{"xfetch", "{mode: xfetch, beta: 2}", "{mode: threshold, ahead: 0.8}", "off", "{beta: 1e400}", "[1]", "{mode: xfetch, beta: 0}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, refresh string) {
		if strings.ContainsAny(refresh, "\n\r") {
			return
		}
		file, err := config.Parse([]byte("namespaces:\n  users:\n    read: through\n    refresh: "+refresh+"\n"), "/tmp")
		if err != nil {
			return
		}
		ahead, beta := file.Namespaces["users"].RefreshPolicy()
		switch {
		case ahead != 0 && beta != 0:
			t.Fatalf("refresh %q: both threshold %g and xfetch %g", refresh, ahead, beta)
		case ahead < 0 || ahead >= 1 || math.IsNaN(ahead):
			t.Fatalf("refresh %q: threshold %g out of range", refresh, ahead)
		case beta < 0 || beta > 100 || math.IsNaN(beta):
			t.Fatalf("refresh %q: beta %g out of range", refresh, beta)
		}
	})
}
