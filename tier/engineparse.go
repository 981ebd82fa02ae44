package tier

import "fmt"

// ParseEngine reads an engine's name as String writes it ("auto",
// "io_uring", "pread"), for flags.
func ParseEngine(s string) (Engine, error) {
	for _, e := range []Engine{EngineAuto, EngineURing, EnginePread} {
		if s == e.String() {
			return e, nil
		}
	}
	return EngineAuto, fmt.Errorf("unknown read engine %q: auto, io_uring or pread", s)
}
