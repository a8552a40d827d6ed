package parse

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kubepki/kubepki/internal/evidence"
)

// TokenCSV parses a kube-apiserver static token file: lines of
// token,user,uid[,"group1,group2"]. The token column is checked for
// presence and then dropped: it never leaves this function.
func TokenCSV(data []byte) ([]evidence.TokenEntry, []error) {
	var out []evidence.TokenEntry
	var errs []error
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.Comment = '#'
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				// Report the line only: the error text may quote the token.
				errs = append(errs, fmt.Errorf("line %d: malformed CSV", pe.Line))
				if pe.Err == csv.ErrQuote || pe.Err == csv.ErrBareQuote {
					// The reader cannot resynchronise after a quote error.
					break
				}
				continue
			}
			errs = append(errs, fmt.Errorf("reading token file: %w", err))
			break
		}
		if len(rec) == 0 {
			continue
		}
		line, _ := r.FieldPos(0)
		if len(rec) < 3 {
			errs = append(errs, fmt.Errorf("line %d: want at least token,user,uid, got %d fields", line, len(rec)))
			continue
		}
		if strings.TrimSpace(rec[0]) == "" || strings.TrimSpace(rec[1]) == "" {
			errs = append(errs, fmt.Errorf("line %d: empty token or user", line))
			continue
		}
		e := evidence.TokenEntry{Line: line, User: rec[1]}
		if len(rec) >= 4 {
			for _, g := range strings.Split(rec[3], ",") {
				if g = strings.TrimSpace(g); g != "" {
					e.Groups = append(e.Groups, g)
				}
			}
		}
		out = append(out, e)
	}
	return out, errs
}
