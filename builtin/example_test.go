package builtin_test

import (
	"fmt"

	"github.com/weirstream/weir/builtin"
)

// window-count's plan: the re-key by user splits it into two sub-topologies
// around a repartition topic; the window state is a store with a changelog.
func ExampleWindowCount() {
	t, err := builtin.WindowCount(builtin.DefaultWindowCount())
	if err != nil {
		fmt.Println(err)
		return
	}
	plan, err := t.Build("clicks-app")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, st := range plan.Subtopologies {
		fmt.Println(st.ID, st.Sources[0].Topic, "->", st.Sinks[0].Topic, st.Stores)
	}
	// Output:
	// 0 clicks -> clicks-app-count-repartition []
	// 1 clicks-app-count-repartition -> clicks-per-window [count-store]
}
