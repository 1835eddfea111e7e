package registry_test

import (
	"context"
	"fmt"

	"github.com/weirstream/weir/serde/registry"
	"github.com/weirstream/weir/serde/registry/registrytest"
)

// Register a schema under a subject and read it back by id, against the
// in-memory test registry.
func Example() {
	srv := registrytest.NewServer()
	defer srv.Close()
	cl, err := registry.New(srv.URL())
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	id, err := cl.Register(ctx, "clicks-value", `"string"`)
	if err != nil {
		fmt.Println(err)
		return
	}
	schema, err := cl.SchemaByID(ctx, id)
	fmt.Println(id, schema, err)
	// Output: 1 "string" <nil>
}
