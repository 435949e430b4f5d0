package ctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/certs"
)

// certsFlags holds the flags of certs and its subcommands.
type certsFlags struct {
	dir       string
	days      int
	caCert    string
	caKey     string
	overwrite bool
	hosts     []string
}

// certsJSON is the -o json output of every certs subcommand.
type certsJSON struct {
	Subject  string    `json:"subject"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	Cert     string    `json:"cert"`
	Key      string    `json:"key"`
	DNSNames []string  `json:"dns_names,omitempty"`
	IPs      []string  `json:"ip_addresses,omitempty"`
}

func newCertsCommand(o *options) *cobra.Command {
	f := &certsFlags{}
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Create a CA and the node and client certificates of a secure cluster",
		Long: "certs writes PEM files with crypto/x509 (ECDSA P-256), one command per file\n" +
			"pair, so securing a cluster needs no openssl:\n\n" +
			"  ringcachectl certs ca                                  # certs/ca.crt, certs/ca.key\n" +
			"  ringcachectl certs node n1 --host 10.0.0.5 --host n1.ringcache\n" +
			"                                                         # certs/node.n1.crt, .key\n" +
			"  ringcachectl certs client web                          # certs/client.web.crt, .key\n" +
			"  ringcachectl certs token web                           # a token; its hash to certs/tokens\n\n" +
			"A node certificate may serve and dial (serverAuth and clientAuth: peers dial\n" +
			"each other with it); its names are exactly the --host values, the addresses\n" +
			"peers and clients dial. A client certificate's common name is the principal\n" +
			"that the auth section of ringcache.yaml grants roles to. Keys are written\n" +
			"with mode 0600; existing files are kept unless --overwrite.",
		Args: cobra.NoArgs,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.dir, "dir", "certs", "directory of the CA and the files written")
	pf.IntVar(&f.days, "days", 0, "validity in days (default 3650 for a CA, 365 otherwise; never past the CA's)")
	pf.BoolVar(&f.overwrite, "overwrite", false, "replace existing files")

	signed := func(use, short, long string, run func(*certs.CA, string) (certs.Pair, string, error)) *cobra.Command {
		c := &cobra.Command{
			Use: use, Short: short, Long: long, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := f.validate(cmd); err != nil {
					return err
				}
				ca, err := certs.LoadCA(f.caPath(f.caCert, "ca.crt"), f.caPath(f.caKey, "ca.key"))
				if errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("%w (create a CA with: ringcachectl certs ca --dir %s, or give --ca-cert and --ca-key)", err, f.dir)
				}
				if err != nil {
					return err
				}
				p, base, err := run(ca, args[0])
				if err != nil {
					return err
				}
				return f.write(o, cmd.OutOrStdout(), base, p)
			},
		}
		c.Flags().StringVar(&f.caCert, "ca-cert", "", "CA certificate (default DIR/ca.crt)")
		c.Flags().StringVar(&f.caKey, "ca-key", "", "CA key (default DIR/ca.key)")
		return c
	}

	node := signed("node NAME --host HOST...", "Create the certificate of node NAME, signed by the CA",
		"node writes DIR/node.NAME.crt and .key: common name NAME, usable to serve and\n"+
			"to dial peers, valid for exactly the --host names and IP addresses (add\n"+
			"localhost or 127.0.0.1 only if clients dial them).",
		func(ca *certs.CA, name string) (certs.Pair, string, error) {
			p, err := ca.Node(name, f.hosts, f.validity(certs.DefaultLeafValidity))
			return p, "node." + name, err
		})
	node.Flags().StringSliceVar(&f.hosts, "host", nil, "IP address or DNS name peers and clients dial (repeatable or comma-separated; required)")

	client := signed("client PRINCIPAL", "Create the client certificate of PRINCIPAL, signed by the CA",
		"client writes DIR/client.PRINCIPAL.crt and .key: common name PRINCIPAL, usable\n"+
			"only to authenticate a client.",
		func(ca *certs.CA, principal string) (certs.Pair, string, error) {
			p, err := ca.Client(principal, f.validity(certs.DefaultLeafValidity))
			return p, "client." + principal, err
		})

	ca := &cobra.Command{
		Use:   "ca",
		Short: "Create the CA that signs node and client certificates",
		Long: "ca writes DIR/ca.crt and DIR/ca.key, a self-signed CA. Keep ca.key off the\n" +
			"nodes: they need ca.crt only.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(cmd); err != nil {
				return err
			}
			_, p, err := certs.NewCA("", f.validity(certs.DefaultCAValidity))
			if err != nil {
				return err
			}
			return f.write(o, cmd.OutOrStdout(), "ca", p)
		},
	}
	var tokensFile string
	token := &cobra.Command{
		Use:   "token PRINCIPAL",
		Short: "Create a bearer token for PRINCIPAL and add its hash to the tokens file",
		Long: "token prints a new random token for PRINCIPAL on stdout and appends the line\n" +
			"\"PRINCIPAL sha256hex\" to the tokens file (default DIR/tokens, mode 0600) that\n" +
			"auth.tokens_file names. Only the hash is stored; the token is shown once:\n\n" +
			"  export RINGCACHE_TOKEN=$(ringcachectl certs token web)\n\n" +
			"Nodes re-read the tokens file within a second of a change. To revoke a\n" +
			"token, delete its line.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := certs.CheckName(args[0]); err != nil {
				return fmt.Errorf("principal: %w", err)
			}
			path := tokensFile
			if path == "" {
				path = filepath.Join(f.dir, "tokens")
			}
			tok := auth.NewToken()
			if err := appendTokenLine(path, args[0]+" "+auth.HashToken(tok)+"\n"); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "added a token of %s to %s\n", args[0], path)
			_, err := fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	token.Flags().StringVar(&tokensFile, "tokens-file", "", "tokens file to append to (default DIR/tokens)")
	cmd.AddCommand(ca, node, client, token)
	return cmd
}

// appendTokenLine appends line to the tokens file at path, creating it and
// its directory private to the user, after checking that the result parses.
func appendTokenLine(path, line string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		line = "\n" + line
	}
	if _, err := auth.ParseTokens(append(old, line...)); err != nil {
		return fmt.Errorf("%s: %w (fix the file first)", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.WriteString(line); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

func (f *certsFlags) validate(cmd *cobra.Command) error {
	if f.days < 0 {
		return fmt.Errorf("--days must be positive, got %d", f.days)
	}
	if cmd.Flags().Lookup("host") != nil && len(f.hosts) == 0 {
		return errors.New("--host is required: the IP addresses and DNS names that peers and clients dial, e.g. --host 10.0.0.5 --host n1.ringcache")
	}
	return nil
}

func (f *certsFlags) caPath(flag, name string) string {
	if flag != "" {
		return flag
	}
	return filepath.Join(f.dir, name)
}

func (f *certsFlags) validity(def time.Duration) time.Duration {
	if f.days <= 0 {
		return def
	}
	return time.Duration(f.days) * 24 * time.Hour
}

func (f *certsFlags) write(o *options, w io.Writer, base string, p certs.Pair) error {
	v := certsJSON{
		Subject:  p.Cert.Subject.CommonName,
		Serial:   p.Cert.SerialNumber.Text(16),
		NotAfter: p.Cert.NotAfter.UTC(),
		Cert:     filepath.Join(f.dir, base+".crt"),
		Key:      filepath.Join(f.dir, base+".key"),
		DNSNames: p.Cert.DNSNames,
	}
	for _, ip := range p.Cert.IPAddresses {
		v.IPs = append(v.IPs, ip.String())
	}
	if err := certs.WritePair(v.Cert, v.Key, p, f.overwrite); err != nil {
		return err
	}
	return o.render(w, v, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "wrote %s and %s (%s, serial %s, valid until %s)\n",
			v.Cert, v.Key, v.Subject, v.Serial, v.NotAfter.Format(time.DateOnly))
		return err
	})
}
