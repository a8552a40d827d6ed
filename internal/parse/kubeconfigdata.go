package parse

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// KubeconfigData is the certificate data of a kubeconfig, by cluster and
// user name: what a CA rotation needs of a kubeconfig kept in a Secret.
// Keys and tokens are not kept.
type KubeconfigData struct {
	// CA is each cluster's certificate-authority-data; CAFile its
	// certificate-authority path, when it names a file instead.
	CA     map[string][]byte
	CAFile map[string]string
	// Client is each user's client-certificate-data.
	Client map[string][]byte
}

// KubeconfigCertData returns the certificate data of a kubeconfig. The
// block-style YAML that kubectl, kubeadm and client-go write is read by a
// line scanner, about fifty times cheaper than a YAML parse, which counts
// when a cluster keeps thousands of kubeconfigs in Secrets; anything else
// (flow style, anchors, block scalars, JSON, comments) goes to client-go's
// loader. Both give the same answer (FuzzKubeconfigCertData).
func KubeconfigCertData(data []byte) (*KubeconfigData, error) {
	if kd, ok := scanKubeconfig(data); ok {
		return kd, nil
	}
	cfg, err := Kubeconfig(data)
	if err != nil {
		return nil, err
	}
	kd := &KubeconfigData{CA: map[string][]byte{}, CAFile: map[string]string{}, Client: map[string][]byte{}}
	for name, c := range cfg.Clusters {
		if len(c.CertificateAuthorityData) > 0 {
			kd.CA[name] = c.CertificateAuthorityData
		}
		if c.CertificateAuthority != "" {
			kd.CAFile[name] = c.CertificateAuthority
		}
	}
	for name, u := range cfg.AuthInfos {
		if len(u.ClientCertificateData) > 0 {
			kd.Client[name] = u.ClientCertificateData
		}
	}
	return kd, nil
}

// scanKubeconfig reads the common layout:
//
//	apiVersion: v1
//	clusters:
//	- cluster:
//	    certificate-authority-data: BASE64
//	    server: https://…
//	  name: NAME
//	users:
//	- name: NAME
//	  user:
//	    client-certificate-data: BASE64
//
// ok is false at the first line it does not understand, and whenever the
// YAML could mean something else than it seems (a value that YAML reads as
// a number, a boolean or null; a duplicate key or name).
func scanKubeconfig(data []byte) (*KubeconfigData, bool) {
	type item struct {
		section                 string
		name, ca, caFile, cert  string
		hasName, hasCA, hasFile bool
		hasCert                 bool
	}
	var section string
	var cur *item
	var items []*item
	var keyCol int       // column of the current item's keys
	var parent string    // the item-level key whose mapping is being read
	childCol := -1       // column of that mapping's keys
	parentValue := false // the item-level key has a scalar value
	itemKeys := map[string]bool{}
	childKeys := map[string]bool{}
	top := map[string]bool{}
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		s := string(line)
		if strings.ContainsAny(s, "\t#\r") || !utf8Plain(s) {
			return nil, false
		}
		indent := len(s) - len(strings.TrimLeft(s, " "))
		rest := s[indent:]
		dash := false
		if strings.HasPrefix(rest, "- ") {
			dash, rest = true, strings.TrimLeft(rest[2:], " ")
			if len(s)-len(rest) != indent+2 {
				return nil, false
			}
		}
		key, value, found := strings.Cut(rest, ":")
		if !found || key == "" || strings.TrimSpace(key) != key || !plain(key) {
			return nil, false
		}
		if value != "" && value[0] != ' ' {
			return nil, false
		}
		value = strings.TrimSpace(value)
		if value != "" && !plain(value) && !(indent == 0 && value == "{}" && (key == "preferences" || key == "extensions")) {
			return nil, false
		}
		switch {
		case indent == 0 && !dash:
			switch key {
			case "apiVersion":
				if value != "v1" {
					return nil, false
				}
			case "kind":
				if value != "Config" {
					return nil, false
				}
			case "clusters", "users", "contexts":
				if value != "" {
					return nil, false
				}
			case "current-context":
			case "preferences", "extensions":
				if value != "{}" {
					return nil, false
				}
			default:
				return nil, false
			}
			if top[key] {
				return nil, false
			}
			top[key], section, cur = true, key, nil
			continue
		case dash && indent <= 2 && cur == nil || dash && cur != nil && indent == keyCol-2:
			if section != "clusters" && section != "users" && section != "contexts" {
				return nil, false
			}
			cur = &item{section: section}
			items = append(items, cur)
			keyCol, parent, childCol, parentValue = indent+2, "", -1, false
			itemKeys, childKeys = map[string]bool{}, map[string]bool{}
		case cur == nil || dash && indent < keyCol:
			return nil, false
		case indent < keyCol:
			return nil, false
		}
		switch {
		case indent+boolInt(dash)*2 == keyCol:
			// An item-level key.
			if itemKeys[key] {
				return nil, false
			}
			itemKeys[key] = true
			parent, childCol, childKeys, parentValue = key, -1, map[string]bool{}, value != ""
			switch key {
			case "name":
				if value == "" {
					return nil, false
				}
				cur.name, cur.hasName = value, true
			case "cluster", "user", "context":
				if value != "" {
					return nil, false
				}
			default:
				return nil, false
			}
		case dash:
			return nil, false // lists inside items: leave them to the loader
		default:
			if !itemKeys[parent] || parentValue {
				return nil, false // under a key that has a value
			}
			if childCol < 0 {
				childCol = indent
			}
			if indent != childCol {
				return nil, false
			}
			if childKeys[key] {
				return nil, false
			}
			childKeys[key] = true
			if !stringFields[parent][key] || value == "" {
				return nil, false // another type, or a nested mapping: leave it to the loader
			}
			if strings.HasSuffix(key, "-data") {
				if _, err := base64.StdEncoding.DecodeString(value); err != nil {
					return nil, false
				}
			}
			switch {
			case cur.section == "clusters" && parent == "cluster" && key == "certificate-authority-data":
				cur.ca, cur.hasCA = value, true
			case cur.section == "clusters" && parent == "cluster" && key == "certificate-authority":
				cur.caFile, cur.hasFile = value, true
			case cur.section == "users" && parent == "user" && key == "client-certificate-data":
				cur.cert, cur.hasCert = value, true
			}
		}
	}
	if len(top) == 0 {
		return nil, false
	}
	kd := &KubeconfigData{CA: map[string][]byte{}, CAFile: map[string]string{}, Client: map[string][]byte{}}
	seen := map[string]bool{}
	for _, it := range items {
		if !it.hasName || seen[it.section+"/"+it.name] {
			return nil, false
		}
		seen[it.section+"/"+it.name] = true
		if it.hasCA && it.ca != "" {
			b, err := base64.StdEncoding.DecodeString(it.ca)
			if err != nil {
				return nil, false
			}
			kd.CA[it.name] = b
		}
		if it.hasFile && it.caFile != "" {
			kd.CAFile[it.name] = it.caFile
		}
		if it.hasCert && it.cert != "" {
			b, err := base64.StdEncoding.DecodeString(it.cert)
			if err != nil {
				return nil, false
			}
			kd.Client[it.name] = b
		}
	}
	return kd, true
}

// stringFields are the string (and base64 data) fields of a kubeconfig's
// cluster, user and context that the scanner takes on.
var stringFields = map[string]map[string]bool{
	"cluster": {"server": true, "tls-server-name": true, "certificate-authority": true, "certificate-authority-data": true, "proxy-url": true},
	"user": {"client-certificate": true, "client-certificate-data": true, "client-key": true, "client-key-data": true,
		"token": true, "tokenFile": true, "as": true, "as-uid": true, "username": true, "password": true},
	"context": {"cluster": true, "user": true, "namespace": true},
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// utf8Plain reports whether s is printable ASCII, the only text the
// scanner takes on.
func utf8Plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// plain reports whether YAML reads s, a plain scalar, as that very string:
// no indicator at its start, no ": " or " #" inside, and not a number, a
// boolean, null or a timestamp.
func plain(s string) bool {
	if s == "" || strings.ContainsAny(s[:1], "-?:,[]{}#&*!|>'\"%@`.+0123456789~") || strings.HasSuffix(s, ":") || strings.HasSuffix(s, " ") ||
		strings.Contains(s, ": ") || strings.Contains(s, " #") || strings.ContainsAny(s, "[]{},") {
		return false
	}
	switch strings.ToLower(s) {
	case "null", "true", "false", "yes", "no", "on", "off", "y", "n":
		return false
	}
	return true
}
