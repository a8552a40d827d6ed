package cli

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/testbed"
)

// TestAuditHere runs kubepki audit, with no subcommand, on the real
// kubeadm node of a real control plane and with that cluster's kubeconfig:
// one report whose targets are the node, the cluster and the probed API
// server host, each with its own findings, and none skipped.
func TestAuditHere(t *testing.T) {
	c := testbed.StartCluster(t)
	var out, errb bytes.Buffer
	args := []string{"audit", "--root", c.NodeDir, "--kubeconfig", c.AdminKubeconfig, "-o", "json", "--now", testNow.Format(time.RFC3339)}
	if err := Run(context.Background(), args, nil, &out, &errb); err != nil {
		t.Fatalf("kubepki %v: %v\n%s", args, err, errb.String())
	}
	r, err := report.Read(&out)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[report.TargetKind]report.Target{}
	for _, tg := range r.Targets {
		kinds[tg.Kind] = tg
	}
	node, cluster, probe := kinds[report.TargetNode], kinds[report.TargetCluster], kinds[report.TargetProbe]
	if len(r.Targets) != 3 || node.Distribution != "kubeadm" || !strings.HasPrefix(cluster.Version, "v1.34") || probe.Name != "127.0.0.1" {
		t.Fatalf("targets %+v, want the kubeadm node, the v1.34 cluster and 127.0.0.1", r.Targets)
	}
	seen := map[string]map[string]report.Status{}
	for _, f := range r.Findings {
		if f.Check == audit.SkippedID {
			t.Errorf("%s was skipped: %s", f.Target, f.Message)
		}
		if seen[f.Target] == nil {
			seen[f.Target] = map[string]report.Status{}
		}
		seen[f.Target][f.Check] = f.Status
	}
	for target, check := range map[string]string{
		node.Name:    "apiserver-anonymous-auth",
		cluster.Name: "rbac-cluster-admins",
		probe.Name:   "probe-apiserver-anonymous",
	} {
		st, ok := seen[target][check]
		if !ok || st == report.StatusNotEvaluated {
			t.Errorf("target %s: %s is %q, want it judged", target, check, st)
		}
	}
}

// TestAuditHereSkips: every part that does not apply keeps its target
// with a notEvaluated finding saying why; an unreachable current context is
// one of them, not a failure, while a kubeconfig named on purpose that
// does not exist is an error.
func TestAuditHereSkips(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", "")
	empty := t.TempDir()
	kc := unreachableKubeconfig(t, "gone")
	for _, tt := range []struct {
		name string
		env  string
		want map[report.TargetKind]string
	}{
		{"no kubeconfig", "", map[report.TargetKind]string{
			report.TargetNode:    "holds none of a Kubernetes node's files",
			report.TargetCluster: "no kubeconfig found",
			report.TargetProbe:   "no kubeconfig context names an API server host",
		}},
		{"unreachable context", kc, map[report.TargetKind]string{
			report.TargetNode:    "holds none of a Kubernetes node's files",
			report.TargetCluster: "context gone could not be audited: reaching the API server https://127.0.0.1:1",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tt.env)
			var out, errb bytes.Buffer
			err := Run(context.Background(), []string{"audit", "--root", empty, "-o", "json", "--fail-on", "info"}, nil, &out, &errb)
			if err != nil {
				t.Fatalf("%v\n%s", err, errb.String())
			}
			if strings.Contains(out.String()+errb.String(), "not-a-real-token") {
				t.Fatal("the token was printed")
			}
			r, err := report.Read(&out)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Targets) != 3 {
				t.Fatalf("targets %+v, want a node, a cluster and a probe", r.Targets)
			}
			kind := map[string]report.TargetKind{}
			for _, tg := range r.Targets {
				kind[tg.Name] = tg.Kind
			}
			got := map[report.TargetKind]bool{}
			for _, f := range r.Findings {
				want, ok := tt.want[kind[f.Target]]
				if !ok {
					continue
				}
				if f.Check == audit.SkippedID && f.Status == report.StatusNotEvaluated && strings.Contains(f.Message, want) {
					got[kind[f.Target]] = true
				}
			}
			for k, want := range tt.want {
				if !got[k] {
					t.Errorf("%s part: no notEvaluated %s finding saying %q in %+v", k, audit.SkippedID, want, r.Findings)
				}
			}
		})
	}

	if err := Run(context.Background(), []string{"audit", "--root", empty, "--kubeconfig", filepath.Join(empty, "none")}, nil, &bytes.Buffer{}, &bytes.Buffer{}); ExitCode(err) != 1 || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("a --kubeconfig that does not exist: exit %d, %v", ExitCode(err), err)
	}
	// The same unreachable context named on purpose: the report is
	// written, with an error finding for the cluster, and the run fails,
	// so that CI does not go green with no cluster check run.
	var out bytes.Buffer
	err := Run(context.Background(), []string{"audit", "--root", empty, "--kubeconfig", kc, "--context", "gone", "-o", "json"}, nil, &out, &bytes.Buffer{})
	if ExitCode(err) != 1 || !errors.Is(err, audit.ErrClusterUnread) {
		t.Errorf("an unreachable context named on purpose: exit %d, %v", ExitCode(err), err)
	}
	r, rerr := report.Read(&out)
	if rerr != nil {
		t.Fatalf("no report written: %v", rerr)
	}
	failed := false
	for _, f := range r.Findings {
		if f.Target == "gone" && f.Status == report.StatusError {
			failed = true
		}
	}
	if !failed {
		t.Errorf("no error finding for the unreachable context: %+v", r.Findings)
	}
}
