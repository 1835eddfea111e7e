package nexmark_test

import (
	"fmt"

	"github.com/weirstream/weir/nexmark"
)

// The generator is deterministic by seed and event number: persons,
// auctions and bids in proportion 1:3:46.
func Example() {
	g, err := nexmark.NewGenerator(nexmark.DefaultConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	counts := map[nexmark.EventType]int{}
	for n := range int64(50) {
		counts[g.Event(n).Type]++
	}
	fmt.Println(counts[nexmark.PersonEvent], counts[nexmark.AuctionEvent], counts[nexmark.BidEvent])
	// Output: 1 3 46
}
