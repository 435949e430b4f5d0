package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrBadTokensFile wraps every error of ParseTokens.
var ErrBadTokensFile = errors.New("bad tokens file")

// TokenTable maps the SHA-256 digests of bearer tokens to their principals.
// It never holds a token.
type TokenTable struct {
	byDigest map[[sha256.Size]byte]string
}

// Len returns the number of tokens.
func (t *TokenTable) Len() int { return len(t.byDigest) }

// Lookup returns the principal of token. It hashes the token and looks the
// digest up; no comparison ever involves the token itself, so its timing
// can tell an attacker only about the digests of their own guesses, which
// reveal nothing of any stored token (the reason tokens are stored hashed
// and looked up by digest, as GitHub does, rather than compared one by one).
func (t *TokenTable) Lookup(token string) (string, bool) {
	name, ok := t.byDigest[sha256.Sum256([]byte(token))]
	return name, ok
}

// ParseTokens reads a tokens file: a line "principal sha256hex" per token,
// where sha256hex is the SHA-256 digest of the token in hex (HashToken;
// `printf %s "$TOKEN" | sha256sum`). Blank lines and lines starting with #
// are ignored, as is a third field starting with #. A principal may have
// several tokens (for rotation); a digest may appear once. Errors name the
// line and never quote a field, in case a token was pasted where its hash
// belongs.
func ParseTokens(data []byte) (*TokenTable, error) {
	t := &TokenTable{byDigest: map[[sha256.Size]byte]string{}}
	firstLine := map[[sha256.Size]byte]int{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 2 || (len(f) > 2 && !strings.HasPrefix(f[2], "#")) {
			return nil, fmt.Errorf("%w: line %d: want \"principal sha256hex\", got %d fields", ErrBadTokensFile, n, len(f))
		}
		name, hexDigest := f[0], f[1]
		if strings.ContainsAny(name, `*?[\`) || len(name) > 1024 {
			return nil, fmt.Errorf("%w: line %d: the principal must be a plain name of at most 1024 bytes (globs belong in the auth config)", ErrBadTokensFile, n)
		}
		var d [sha256.Size]byte
		if len(hexDigest) != hex.EncodedLen(sha256.Size) {
			return nil, fmt.Errorf("%w: line %d: the second field is not a SHA-256 digest (64 hex digits); store the token's hash, never the token", ErrBadTokensFile, n)
		}
		if _, err := hex.Decode(d[:], []byte(hexDigest)); err != nil {
			return nil, fmt.Errorf("%w: line %d: the second field is not a SHA-256 digest (64 hex digits); store the token's hash, never the token", ErrBadTokensFile, n)
		}
		if prev, dup := firstLine[d]; dup {
			return nil, fmt.Errorf("%w: line %d: the same token digest as line %d", ErrBadTokensFile, n, prev)
		}
		firstLine[d] = n
		t.byDigest[d] = name
	}
	return t, nil
}

// LoadTokens reads and parses the tokens file at path.
func LoadTokens(path string) (*TokenTable, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := ParseTokens(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// HashToken returns the line-ready hex SHA-256 digest of token.
func HashToken(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

// NewToken returns a random token: 32 bytes from crypto/rand, base64url.
func NewToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails; see crypto/rand.Read
	return base64.RawURLEncoding.EncodeToString(b)
}
