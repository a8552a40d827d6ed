package parse

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Unit is what a systemd unit or drop-in says about how a service starts.
type Unit struct {
	// Environment are the Environment= assignments, in order.
	Environment []KeyValue
	// EnvironmentFiles are the EnvironmentFile= paths; a leading "-"
	// (ignore if missing) is removed and recorded in Optional.
	EnvironmentFiles []EnvFileRef
	// ExecStart is the last non-empty ExecStart= of the [Service] section
	// (an empty ExecStart= resets the list, as in drop-ins).
	ExecStart string
}

// EnvFileRef is one EnvironmentFile= line.
type EnvFileRef struct {
	Path     string
	Optional bool
}

// KeyValue is one variable assignment with the line it came from.
type KeyValue struct {
	Key, Value string
	Line       int
}

// SystemdUnit parses a unit file or drop-in. Only the [Service] section's
// Environment=, EnvironmentFile= and ExecStart= are read; line
// continuations with a trailing backslash are joined.
func SystemdUnit(data []byte) (Unit, error) {
	var u Unit
	section := ""
	lines, err := logicalLines(data)
	if err != nil {
		return u, err
	}
	for _, l := range lines {
		s := strings.TrimSpace(l.text)
		if s == "" || s[0] == '#' || s[0] == ';' {
			continue
		}
		if strings.HasPrefix(s, "[") {
			if !strings.HasSuffix(s, "]") {
				return u, fmt.Errorf("line %d: unterminated section header", l.line)
			}
			section = s
			continue
		}
		if section != "[Service]" {
			continue
		}
		key, val, ok := strings.Cut(s, "=")
		if !ok {
			return u, fmt.Errorf("line %d: expected key=value", l.line)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "Environment":
			for _, w := range SplitCommandLine(val) {
				k, v, ok := strings.Cut(w, "=")
				if !ok {
					return u, fmt.Errorf("line %d: Environment item %q is not NAME=value", l.line, w)
				}
				u.Environment = append(u.Environment, KeyValue{Key: k, Value: v, Line: l.line})
			}
		case "EnvironmentFile":
			ref := EnvFileRef{Path: val}
			if strings.HasPrefix(val, "-") {
				ref = EnvFileRef{Path: val[1:], Optional: true}
			}
			u.EnvironmentFiles = append(u.EnvironmentFiles, ref)
		case "ExecStart":
			u.ExecStart = val
		}
	}
	return u, nil
}

// EnvFile parses an environment file as systemd's EnvironmentFile= reads
// it: NAME=value lines, optional quotes, comments with # or ;.
func EnvFile(data []byte) ([]KeyValue, error) {
	var out []KeyValue
	lines, err := logicalLines(data)
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		s := strings.TrimSpace(l.text)
		if s == "" || s[0] == '#' || s[0] == ';' {
			continue
		}
		s = strings.TrimPrefix(s, "export ")
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return out, fmt.Errorf("line %d: expected NAME=value", l.line)
		}
		k = strings.TrimSpace(k)
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out = append(out, KeyValue{Key: k, Value: v, Line: l.line})
	}
	return out, nil
}

// Expand replaces $NAME and ${NAME} in s with values from env; unknown
// names become empty, as systemd does.
func Expand(s string, env map[string]string) string {
	return os.Expand(s, func(k string) string { return env[k] })
}

type logicalLine struct {
	text string
	line int
}

// maxLineBytes bounds one line of a text configuration file; real unit
// files and rule files have lines of a few hundred bytes.
const maxLineBytes = 256 << 10

func logicalLines(data []byte) ([]logicalLine, error) {
	var out []logicalLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLineBytes)
	n := 0
	var cur strings.Builder
	start := 0
	for sc.Scan() {
		n++
		t := sc.Text()
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(t, "\\") {
			cur.WriteString(strings.TrimSuffix(t, "\\"))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(t)
		out = append(out, logicalLine{text: cur.String(), line: start})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("line %d: %w", n+1, err)
	}
	if cur.Len() > 0 {
		out = append(out, logicalLine{text: cur.String(), line: start})
	}
	return out, nil
}
