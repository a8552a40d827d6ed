// Package parse turns the bytes of node files into typed values: PEM
// certificates and keys, component flags, static pod manifests, systemd
// units and environment files, static token files and Linux audit rules.
//
// Parsers are pure: bytes in, values and errors out, no I/O. They never
// panic on any input (each has a fuzz target; regression inputs live in
// testdata/fuzz), and their errors carry line numbers where the format has
// lines. Secret material never leaves a parser: keys come back as public
// facts, token files as users and groups.
package parse
