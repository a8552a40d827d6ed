// Package arch holds no code: its test keeps the layout honest, checking
// that imports follow the one-way flow sources → evidence → checks →
// report → renderers described in the README.
package arch
