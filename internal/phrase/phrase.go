// Package phrase holds the few helpers that the packages writing findings
// and messages (checks, inventory, waivers) share to put counts and lists
// into English, so that each is written once.
package phrase

import (
	"slices"
	"strconv"
)

// Plural returns n followed by the singular or plural noun: "1 finding",
// "3 findings", "0 findings".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// AppendOnce appends s to list unless list already holds it, keeping the
// order in which items were first seen.
func AppendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
