package serde_test

import (
	"fmt"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/serde/registry"
	"github.com/weirstream/weir/serde/registry/registrytest"
)

// Click is a user's type; the mapping to Avro's native form is plain Go.
type Click struct {
	User string
	TS   int64
}

const clickSchema = `{"type":"record","name":"Click","fields":[
	{"name":"user","type":"string"},{"name":"ts","type":"long"}]}`

var clickMapping = serde.AvroMapping[Click]{
	ToMap: func(c Click) (map[string]any, error) { return map[string]any{"user": c.User, "ts": c.TS}, nil },
	FromMap: func(m map[string]any) (Click, error) {
		user, ok1 := m["user"].(string)
		ts, ok2 := m["ts"].(int64)
		if !ok1 || !ok2 {
			return Click{}, fmt.Errorf("not a click: %v", m)
		}
		return Click{User: user, TS: ts}, nil
	},
}

// ExampleAvroRegistryTyped writes and reads Avro in the Schema Registry
// wire format. Pass the serde to topology.Source or topology.To like any
// other.
func ExampleAvroRegistryTyped() {
	reg := registrytest.NewServer() // a real registry: registry.New("https://registry:8081", ...)
	defer reg.Close()
	client, err := registry.New(reg.URL())
	if err != nil {
		panic(err)
	}
	clicks, err := serde.AvroRegistryTyped(client, serde.ValueSubject("clicks"), clickSchema, clickMapping)
	if err != nil {
		panic(err)
	}

	b, _ := clicks.Encode(Click{User: "u1", TS: 1700000000123})
	id, body, _ := serde.ParseWire(b)
	fmt.Printf("magic %d, schema id %d, %d bytes of Avro\n", b[0], id, len(body))

	c, _ := clicks.Decode(b)
	fmt.Printf("%+v\n", c)

	_, err = clicks.Decode([]byte(`{"user":"u1"}`)) // JSON on an Avro topic
	fmt.Println(err)
	// Output:
	// magic 0, schema id 1, 9 bytes of Avro
	// {User:u1 TS:1700000000123}
	// serde: avro decode: wire format: magic byte 0x7b, want 0x00 (not written by a Schema Registry serializer)
}

// ExampleAvro encodes generic records (goavro's native maps) in plain
// Avro binary, without a registry.
func ExampleAvro() {
	s, err := serde.Avro(clickSchema)
	if err != nil {
		panic(err)
	}
	b, _ := s.Encode(map[string]any{"user": "u1", "ts": int64(3)})
	fmt.Printf("% x\n", b)
	m, _ := s.Decode(b)
	fmt.Println(m["user"], m["ts"])
	// Output:
	// 04 75 31 06
	// u1 3
}
