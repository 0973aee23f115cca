// Package cache owns the two cache tiers that sit in front of the avatar
// pipeline: Memory, a cost-bounded ristretto cache whose entries can be purged
// by tag, and Durable, a write-behind wrapper that keeps a slow or failing
// durable Store (disk, S3) off the request path. It knows nothing of HTTP,
// images or how a Store is implemented; package storage satisfies Store.
package cache
