package phrase

import (
	"slices"
	"testing"
)

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 findings", 1: "1 finding", 2: "2 findings"} {
		if got := Plural(n, "finding", "findings"); got != want {
			t.Errorf("Plural(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestAppendOnceKeepsFirstOrder(t *testing.T) {
	var list []string
	for _, s := range []string{"b", "a", "b", "c", "a"} {
		list = AppendOnce(list, s)
	}
	if want := []string{"b", "a", "c"}; !slices.Equal(list, want) {
		t.Errorf("got %v, want %v", list, want)
	}
}
