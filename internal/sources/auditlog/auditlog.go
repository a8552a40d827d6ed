// Package auditlog reads kube-apiserver audit logs (JSON lines, rotated and
// gzipped files too) and gathers, per credential ID, who used it, when,
// from where and how often. Request and response bodies in the events are
// skipped, never kept.
package auditlog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
)

// CredentialIDKey is the user extra that carries the credential ID.
const CredentialIDKey = "authentication.kubernetes.io/credential-id"

// Audit annotations kubepki reads: the authorization decision and its
// reason (kube-apiserver's authorization filter writes "internal error" as
// the reason when an authorizer failed, which with a Deny failure policy
// refuses the request with a 500), and the ID of a credential a request
// minted (TokenRequest, 1.32+).
const (
	decisionAnnotation = "authorization.k8s.io/decision"
	reasonAnnotation   = "authorization.k8s.io/reason"
	issuedAnnotation   = "authentication.kubernetes.io/issued-credential-id"
)

// maxLine bounds one event: events at the RequestResponse level carry
// bodies, and a Secret or ConfigMap can be 1 MiB; longer lines are skipped
// with a problem.
const maxLine = 4 << 20

// Read reads the files into evidence. A file that cannot be opened, or a
// line that is not an event, is a problem naming the file and line; the
// rest is still read.
func Read(files []string, revoked map[string]time.Time, grace time.Duration) *evidence.AuditLog {
	ev := &evidence.AuditLog{Files: files, Credentials: map[string]*evidence.CredentialUse{}, Issued: map[string][]evidence.Issuance{}, Grace: grace}
	if revoked != nil {
		ev.Revoked = map[string]time.Time{}
		for k, v := range revoked {
			ev.Revoked[k] = v
		}
	}
	for _, f := range files {
		readFile(ev, f)
	}
	for _, c := range ev.Credentials {
		sort.Strings(c.Groups)
		sort.Strings(c.SourceIPs)
	}
	return ev
}

func readFile(ev *evidence.AuditLog, path string) {
	f, err := os.Open(path)
	if err != nil {
		ev.Problems = append(ev.Problems, evidence.Problem{Path: path, Message: err.Error()})
		return
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			ev.Problems = append(ev.Problems, evidence.Problem{Path: path, Message: "gzip: " + err.Error()})
			return
		}
		defer gz.Close()
		r = gz
	}
	lr := bufio.NewReaderSize(r, 64<<10)
	badLines, firstBad := 0, ""
	for line := 1; ; line++ {
		data, tooLong, err := readLine(lr)
		if len(data) > 0 && !tooLong {
			if perr := add(ev, data); perr != nil {
				badLines++
				if firstBad == "" {
					firstBad = fmt.Sprintf("line %d: %v", line, perr)
				}
			}
		} else if tooLong {
			badLines++
			if firstBad == "" {
				firstBad = fmt.Sprintf("line %d: longer than %d bytes", line, maxLine)
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				ev.Problems = append(ev.Problems, evidence.Problem{Path: path, Message: fmt.Sprintf("line %d: %v", line, err)})
			}
			break
		}
	}
	if badLines > 0 {
		ev.Problems = append(ev.Problems, evidence.Problem{Path: path, Message: fmt.Sprintf("%d lines are not audit events (first: %s); they were skipped", badLines, firstBad)})
	}
}

// readLine returns one line without its newline, or reports that it is
// longer than maxLine (and skips it).
func readLine(r *bufio.Reader) ([]byte, bool, error) {
	var buf []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if len(buf)+len(chunk) > maxLine {
			for isPrefix && err == nil {
				_, isPrefix, err = r.ReadLine()
			}
			return nil, true, err
		}
		buf = append(buf, chunk...)
		if !isPrefix || err != nil {
			return bytes.TrimSpace(buf), false, err
		}
	}
}

// event is the part of an audit.k8s.io/v1 Event kubepki reads. Decoding
// into it skips the request and response bodies, and keeps the
// apiserver's audit packages out of the binary.
type event struct {
	Kind  string `json:"kind"`
	Stage string `json:"stage"`
	User  struct {
		Username string              `json:"username"`
		Groups   []string            `json:"groups"`
		Extra    map[string][]string `json:"extra"`
	} `json:"user"`
	SourceIPs []string `json:"sourceIPs"`
	Verb      string   `json:"verb"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int32 `json:"code"`
	} `json:"responseStatus"`
	Annotations              map[string]string `json:"annotations"`
	RequestReceivedTimestamp time.Time         `json:"requestReceivedTimestamp"`
	StageTimestamp           time.Time         `json:"stageTimestamp"`
}

func add(ev *evidence.AuditLog, data []byte) error {
	var e event
	if err := json.Unmarshal(data, &e); err != nil {
		return err
	}
	if e.Kind != "" && e.Kind != "Event" {
		return fmt.Errorf("kind %q, want Event", e.Kind)
	}
	ev.Events++
	when := e.RequestReceivedTimestamp
	if when.IsZero() {
		when = e.StageTimestamp
	}
	var id string
	if ids := e.User.Extra[CredentialIDKey]; len(ids) > 0 {
		id = ids[0]
	}
	key := id
	if key == "" {
		key = "user:" + e.User.Username
	}
	c := ev.Credentials[key]
	if c == nil {
		c = &evidence.CredentialUse{ID: id, User: e.User.Username, First: when, Last: when}
		ev.Credentials[key] = c
	}
	for _, g := range e.User.Groups {
		if !slices.Contains(c.Groups, g) {
			c.Groups = append(c.Groups, g)
		}
	}
	for _, ip := range e.SourceIPs {
		if !slices.Contains(c.SourceIPs, ip) && len(c.SourceIPs) < 64 {
			c.SourceIPs = append(c.SourceIPs, ip)
		}
	}
	if !when.IsZero() {
		if when.Before(c.First) || c.First.IsZero() {
			c.First = when
		}
		if when.After(c.Last) {
			c.Last = when
		}
	}
	if e.Stage != "ResponseComplete" && e.Stage != "Panic" {
		return nil
	}
	ev.Counted++
	c.Requests++
	refused := e.refused()
	if id != "" && !refused {
		if is, ok := e.issuance(when); ok {
			ev.Issued[id] = append(ev.Issued[id], is)
		}
	}
	if refused {
		c.Denied++
	}
	if at, ok := ev.Revoked[id]; ok && id != "" && when.After(at) {
		c.AfterRevocation++
		switch {
		case refused:
		case when.Before(at.Add(ev.Grace)):
			c.AllowedInGrace++
		default:
			c.AllowedAfterRevocation++
		}
	}
	return nil
}

// refused tells whether the apiserver refused the request, from the
// authorization decision it recorded: "allow" went through whatever the
// status code (a 404 after an allow was still authorized); "forbid", or an
// authorizer error (reason "internal error", answered 500), was refused.
// Without annotations (an event from an older apiserver), 401 and 403 are.
func (e *event) refused() bool {
	switch e.Annotations[decisionAnnotation] {
	case "allow":
		return false
	case "forbid":
		return true
	}
	if e.Annotations[reasonAnnotation] == "internal error" {
		return true
	}
	return e.ResponseStatus != nil && (e.ResponseStatus.Code == 401 || e.ResponseStatus.Code == 403)
}

// issuance returns the credential a successful request minted, if any: a
// TokenRequest (create serviceaccounts/token), or a
// CertificateSigningRequest created.
func (e *event) issuance(at time.Time) (evidence.Issuance, bool) {
	o := e.ObjectRef
	if o == nil || e.Verb != "create" || e.ResponseStatus == nil || e.ResponseStatus.Code >= 300 {
		return evidence.Issuance{}, false
	}
	switch {
	case o.Resource == "serviceaccounts" && o.Subresource == "token":
		return evidence.Issuance{Kind: evidence.IssuedToken, ID: e.Annotations[issuedAnnotation],
			Object: "serviceaccounts/" + o.Name + "/token in " + o.Namespace, User: e.User.Username, At: at}, true
	case o.Resource == "certificatesigningrequests" && o.Subresource == "":
		return evidence.Issuance{Kind: evidence.IssuedCSR, Object: "CertificateSigningRequest " + o.Name, User: e.User.Username, At: at}, true
	}
	return evidence.Issuance{}, false
}
