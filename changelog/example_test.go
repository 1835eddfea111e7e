package changelog_test

import (
	"fmt"

	"github.com/weirstream/weir/changelog"
)

// A changelog record's value is a framed copy of the stored value; a nil
// value is a tombstone.
func Example() {
	framed := changelog.EncodeValue([]byte("42"))
	v, deleted, err := changelog.DecodeValue(framed)
	fmt.Printf("%s %q %v %v\n", changelog.Topic("clicks", "count-store"), v, deleted, err)
	_, deleted, _ = changelog.DecodeValue(nil)
	fmt.Println("tombstone:", deleted)
	// Output:
	// clicks-count-store-changelog "42" false <nil>
	// tombstone: true
}
