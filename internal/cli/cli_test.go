package cli

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// TestExitCodes maps each kind of outcome to its exit status.
func TestExitCodes(t *testing.T) {
	empty := t.TempDir()
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"version"}, 0},
		{[]string{"nope"}, 2},
		{[]string{"audit", "node", "-o", "xml"}, 2},
		{[]string{"audit", "node", "--root", empty, "--fail-on", "info"}, 0},
		{[]string{"audit", "node", "--root", empty + "/missing"}, 1},
		{[]string{"demo", "--fail-on", "critical", "-o", "json"}, 3},
		{[]string{"audit", "probe", "127.0.0.1", "--timeout", "0s"}, 2},
		{[]string{"audit", "probe", "127.0.0.1", "--etcd-port", "70000"}, 2},
		{[]string{"audit", "cluster", "--progress", "sometimes"}, 2},
	} {
		var out, errb bytes.Buffer
		err := Run(context.Background(), tt.args, nil, &out, &errb)
		if got := ExitCode(err); got != tt.want {
			t.Errorf("kubepki %v: exit %d (%v), want %d", tt.args, got, err, tt.want)
		}
	}
	if ExitCode(errors.New("x")) != 1 {
		t.Errorf("a plain error must exit 1")
	}
}
