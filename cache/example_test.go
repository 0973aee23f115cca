package cache_test

import (
	"context"
	"fmt"

	"github.com/avatarproxy/avatarproxy/cache"
)

func ExampleMemory() {
	type avatar struct {
		contentType string
		body        []byte
	}
	m, err := cache.NewMemory(cache.MemoryConfig{MaxBytes: 64 << 20},
		func(a avatar) int64 { return int64(len(a.body) + len(a.contentType)) })
	if err != nil {
		panic(err)
	}
	defer m.Close()

	// Every size of one chat's avatar shares the chat id as its tag.
	m.Set("79001234567@c.us/128", "79001234567@c.us", avatar{"image/jpeg", []byte("...")}, 0)
	m.Set("79001234567@c.us/640", "79001234567@c.us", avatar{"image/jpeg", []byte("......")}, 0)
	m.Wait() // Sets are applied asynchronously

	a, ok := m.Get("79001234567@c.us/128")
	fmt.Println(a.contentType, ok)

	m.DeleteTag("79001234567@c.us") // purge the chat: every size goes
	_, ok = m.Get("79001234567@c.us/640")
	fmt.Println(ok)
	// Output:
	// image/jpeg true
	// false
}

func ExampleDurable() {
	// A nil Store means "no durable tier" (AVATAR_STORAGE=none): everything
	// misses and writes are dropped, so callers need no special case.
	d := cache.NewDurable(nil, cache.DurableConfig{}, nil)
	defer d.Close(context.Background())

	queued := d.PutAsync("79001234567@c.us/128", []byte("jpeg"))
	_, ok, err := d.Get(context.Background(), "79001234567@c.us/128")
	fmt.Println(queued, ok, err)
	// Output:
	// false false <nil>
}
