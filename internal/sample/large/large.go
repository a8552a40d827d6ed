// Package large makes the evidence of large clusters, shaped as real ones
// are, and audits it with kubepki's own checks, so that tests and
// benchmarks can see what kubepki's outputs become at the scale of real
// clusters without a cluster: many occurrences of few checks, as thousands
// of pods run on their namespace's default service account and every
// application's RoleBinding is judged.
//
// The shape per namespace follows the large cluster BenchmarkCluster loads
// into a real kube-apiserver (internal/audit/cluster_bench_test.go), with
// more applications: five service accounts, ten RoleBindings (half to the
// namespace's Role, half to one of the cluster's ClusterRoles), eight
// Deployments of three replicas (five on the default service account with
// its token mounted, one on its own service account that mounts its token,
// two with the automount off), one ClusterRole with its
// ClusterRoleBinding to a person and a team, and, for one namespace in
// four, an approved kube-apiserver-client CSR with its issued certificate.
// Nothing is read from a disk or an API server: the evidence is made in
// memory, and the report is what audit.ClusterReport makes of it.
package large

import (
	"fmt"
	"strconv"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/report"
)

// Per namespace, as BenchmarkCluster loads them.
const (
	saPerNS          = 5 // default and four applications'
	rbPerNS          = 10
	deploymentsPerNS = 8
	replicas         = 3
	// nsPerCSR: one person in four namespaces' teams holds a client
	// certificate issued through the CSR API.
	nsPerCSR = 4
)

// Cluster makes the evidence of a cluster of the given number of
// namespaces, as kubepki would read it from the context name at server,
// with certificates issued by a CA of its own, valid from about now on.
func Cluster(name, server string, namespaces int, now time.Time) (*evidence.Cluster, error) {
	ca, err := certgen.New(certgen.Spec{CommonName: "kubernetes", CA: true, Key: certgen.ECDSAP256, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(9, 0, 0)}, nil)
	if err != nil {
		return nil, err
	}
	// One key for every issued certificate: making keys is not what the
	// tests of scale are about (BenchmarkCluster does the same).
	key, err := certgen.NewKey(certgen.ECDSAP256)
	if err != nil {
		return nil, err
	}
	c := &evidence.Cluster{Context: name, Server: server, Version: "v1.34.4", Identity: "kubernetes-admin"}
	ns := func(i int) string { return fmt.Sprintf("team-%04d", i) }
	verbs := [][]string{{"get", "list"}, {"create", "update"}, {"*"}, {"watch"}}
	resources := [][]string{{"pods"}, {"configmaps", "services"}, {"deployments"}, {"secrets"}, {"pods/log"}}
	clusterRoles := namespaces
	for i := range clusterRoles {
		name := fmt.Sprintf("app-cr-%04d", i)
		c.ClusterRoles = append(c.ClusterRoles, rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"", "apps"}, Resources: resources[i%len(resources)], Verbs: verbs[i%len(verbs)]},
				{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}, ResourceNames: []string{"cm-" + strconv.Itoa(i)}},
			},
		})
		c.ClusterRoleBindings = append(c.ClusterRoleBindings, rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects: []rbacv1.Subject{
				{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("user-%d", i)},
				{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("team-%d", i%50)},
			},
		})
	}
	no := false
	for i := range namespaces {
		n := ns(i)
		for s := range saPerNS {
			name := "default"
			if s > 0 {
				name = fmt.Sprintf("app-%d", s)
			}
			c.ServiceAccounts = append(c.ServiceAccounts, evidence.ServiceAccount{Namespace: n, Name: name})
		}
		c.Roles = append(c.Roles, rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: n},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps", "pods"}, Verbs: []string{"get", "list", "watch"}}},
		})
		for r := range rbPerNS {
			ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "app"}
			if r%2 == 1 {
				ref = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: fmt.Sprintf("app-cr-%04d", (i*rbPerNS+r)%clusterRoles)}
			}
			c.RoleBindings = append(c.RoleBindings, rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("rb-%d", r), Namespace: n},
				RoleRef:    ref,
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: fmt.Sprintf("app-%d", 1+r%(saPerNS-1)), Namespace: n}},
			})
		}
		for d := range deploymentsPerNS {
			// A Deployment's ReplicaSet and its replicas; the owners need
			// not exist for the audit. Most applications run on the
			// namespace's default service account with the token mounted,
			// one on its own service account that still mounts its token,
			// the rest on their own with the automount off.
			rs := fmt.Sprintf("app-%d-5d8f7c", d)
			pod := evidence.Pod{Namespace: n, Owner: "ReplicaSet/" + rs}
			switch {
			case d < deploymentsPerNS-3:
				pod.ServiceAccount, pod.TokenMounted = "default", true
			case d == deploymentsPerNS-3:
				pod.ServiceAccount, pod.TokenMounted = "app-1", true
			default:
				pod.ServiceAccount, pod.Automount = fmt.Sprintf("app-%d", 1+d%(saPerNS-1)), &no
			}
			for p := range replicas {
				pod.Name = fmt.Sprintf("%s-%d", rs, p)
				c.Pods = append(c.Pods, pod)
			}
		}
		if i%nsPerCSR != 0 {
			continue
		}
		user := fmt.Sprintf("person-%04d", i)
		issued := now.Add(-time.Duration(i%90) * 24 * time.Hour)
		leaf, err := certgen.New(certgen.Spec{
			CommonName: user, Organization: []string{"team-" + strconv.Itoa(i%50)}, Client: true, Signer: key,
			NotBefore: issued, NotAfter: issued.Add(time.Duration(1+i%400) * 24 * time.Hour),
		}, ca)
		if err != nil {
			return nil, err
		}
		c.CSRs = append(c.CSRs, evidence.CSR{
			Name: user, SignerName: "kubernetes.io/kube-apiserver-client",
			Requester: "kubernetes-admin", RequesterGroups: []string{"kubeadm:cluster-admins", "system:authenticated"},
			Created: issued, Usages: []string{"digital signature", "client auth"},
			RequestedUser: user, RequestedGroups: []string{"team-" + strconv.Itoa(i%50)},
			Approved: true, ApprovedAt: issued, Certificate: leaf.Cert,
		})
	}
	return c, nil
}

// Report audits large clusters, as kubepki audit cluster --all-contexts
// would, with at least the given number of findings: a production cluster
// and a staging one a quarter its size. Every finding is one kubepki's
// checks make of that evidence; the number of namespaces is found from a
// small cluster's count, and grown until the report is large enough.
func Report(findings int, now time.Time) (*report.Report, error) {
	const probe = 40
	r, err := clusters(probe, now)
	if err != nil || len(r.Findings) >= findings {
		return r, err
	}
	small, err := clusters(probe/2, now)
	if err != nil {
		return nil, err
	}
	perNS := float64(len(r.Findings)-len(small.Findings)) / float64(probe-probe/2)
	fixed := float64(len(r.Findings)) - perNS*probe
	namespaces := int((float64(findings)-fixed)/perNS) + 1
	for {
		r, err := clusters(namespaces, now)
		if err != nil || len(r.Findings) >= findings {
			return r, err
		}
		namespaces += int(float64(findings-len(r.Findings))/perNS) + 1
	}
}

// clusters audits a production cluster of four fifths of the namespaces
// and a staging one of the rest, and merges the two reports.
func clusters(namespaces int, now time.Time) (*report.Report, error) {
	var parts []*report.Report
	for _, t := range []struct {
		name, server string
		namespaces   int
	}{
		{"prod", "https://192.0.2.10:6443", namespaces * 4 / 5},
		{"staging", "https://192.0.2.20:6443", namespaces - namespaces*4/5},
	} {
		ev, err := Cluster(t.name, t.server, t.namespaces, now)
		if err != nil {
			return nil, err
		}
		parts = append(parts, audit.ClusterReport(ev, now, checks.DefaultPolicy()))
	}
	return report.Merge(parts...), nil
}
