package state_test

import (
	"fmt"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
)

// A task's writes go to its cache; Apply makes them durable together with
// the checkpoint record, Discard drops them.
func Example() {
	cfg := state.DefaultConfig()
	cfg.InMemory = true
	db, err := state.Open(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	task := db.Task("0_3")
	counts := state.NewValue(task.Store("counts"), serde.Int64())
	counts.Set([]byte("alice"), 2)
	task.Apply(state.Checkpoint{ID: 1, Changelogs: map[string]int64{"counts": 1}})

	counts.Set([]byte("alice"), 3) // not applied
	task.Discard()

	n, ok, _ := counts.Get([]byte("alice"))
	cp, _, _ := task.Checkpoint()
	fmt.Println(n, ok, cp.ID, cp.Changelogs["counts"])
	// Output: 2 true 1 1
}
