package windows_test

import (
	"fmt"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/windows"
)

// A tumbling count: records fold into their window; Advance emits each
// window once, final, when the watermark passes its end plus grace; a
// record for a closed window is reported late instead of added.
func Example() {
	tumbling, err := windows.Tumbling(10 * time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	op, err := windows.NewOperator(windows.Spec{Assigner: tumbling}, state.NewMemStore(), serde.Int64(), windows.Count[string]())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ts := range []int64{1_000, 4_000, 12_000} {
		if _, err := op.Add([]byte("u1"), "click", ts, windows.Unknown); err != nil {
			fmt.Println(err)
			return
		}
	}
	err = op.Advance(10_000, func(r windows.Result[int64]) error {
		fmt.Printf("%s %v count=%d final=%v\n", r.Key, r.Window, r.Value, r.Final)
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	late, err := op.Add([]byte("u1"), "click", 9_000, 10_000)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("late:", late.Late)
	// Output:
	// u1 [0,10000) count=2 final=true
	// late: true
}
