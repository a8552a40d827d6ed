package report

import (
	"sort"
	"strconv"
)

// Diff is what changed between two reports.
type Diff struct {
	// New findings are in the new report only; Resolved in the old one
	// only; Changed are in both with another status, severity or message.
	New      []Finding       `json:"new"`
	Resolved []Finding       `json:"resolved"`
	Changed  []FindingChange `json:"changed"`
	// Certificates added, removed, and replaced at the same place (a
	// renewal: same path and index, another fingerprint).
	AddedCertificates   []Certificate       `json:"addedCertificates"`
	RemovedCertificates []Certificate       `json:"removedCertificates"`
	ReplacedCerts       []CertificateChange `json:"replacedCertificates"`
}

// FindingChange is a finding present in both reports, changed.
type FindingChange struct {
	Old Finding `json:"old"`
	New Finding `json:"new"`
}

// CertificateChange is a certificate replaced at the same place.
type CertificateChange struct {
	Old Certificate `json:"old"`
	New Certificate `json:"new"`
}

// findingKey identifies a finding across reports: the same check, target
// and place.
func findingKey(f Finding) string {
	return f.Target + "\x00" + f.Check + "\x00" + f.Location.String()
}

func certPlace(c Certificate) string {
	return c.Path + "\x00" + c.Source + "\x00" + strconv.Itoa(c.Index)
}

// Compare computes what changed from old to new.
func Compare(old, new *Report) *Diff {
	d := &Diff{New: []Finding{}, Resolved: []Finding{}, Changed: []FindingChange{},
		AddedCertificates: []Certificate{}, RemovedCertificates: []Certificate{}, ReplacedCerts: []CertificateChange{}}
	before := map[string]Finding{}
	for _, f := range old.Findings {
		before[findingKey(f)] = f
	}
	seen := map[string]bool{}
	for _, f := range new.Findings {
		k := findingKey(f)
		seen[k] = true
		o, ok := before[k]
		switch {
		case !ok:
			d.New = append(d.New, f)
		case o.Status != f.Status || o.Severity != f.Severity || o.Message != f.Message:
			d.Changed = append(d.Changed, FindingChange{Old: o, New: f})
		}
	}
	for _, f := range old.Findings {
		if !seen[findingKey(f)] {
			d.Resolved = append(d.Resolved, f)
		}
	}
	oldBySHA, newBySHA := map[string]bool{}, map[string]bool{}
	oldAt := map[string]Certificate{}
	for _, c := range old.Certificates {
		oldBySHA[c.SHA256+certPlace(c)] = true
		oldAt[certPlace(c)] = c
	}
	newAt := map[string]bool{}
	for _, c := range new.Certificates {
		newBySHA[c.SHA256+certPlace(c)] = true
		newAt[certPlace(c)] = true
		if oldBySHA[c.SHA256+certPlace(c)] {
			continue
		}
		if o, ok := oldAt[certPlace(c)]; ok {
			d.ReplacedCerts = append(d.ReplacedCerts, CertificateChange{Old: o, New: c})
			continue
		}
		d.AddedCertificates = append(d.AddedCertificates, c)
	}
	for _, c := range old.Certificates {
		if !newBySHA[c.SHA256+certPlace(c)] && !newAt[certPlace(c)] {
			d.RemovedCertificates = append(d.RemovedCertificates, c)
		}
	}
	sortFindings(d.New)
	sortFindings(d.Resolved)
	return d
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Severity.Rank() != fs[j].Severity.Rank() {
			return fs[i].Severity.Rank() > fs[j].Severity.Rank()
		}
		return findingKey(fs[i]) < findingKey(fs[j])
	})
}

// Empty reports whether nothing changed.
func (d *Diff) Empty() bool {
	return len(d.New)+len(d.Resolved)+len(d.Changed)+len(d.AddedCertificates)+len(d.RemovedCertificates)+len(d.ReplacedCerts) == 0
}
