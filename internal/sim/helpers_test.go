package sim

import (
	"io"
	"strconv"
	"strings"
)

func itoa(i int) string { return strconv.Itoa(i) }

func stringsReader(lines []string) io.Reader { return strings.NewReader(strings.Join(lines, "\n")) }
