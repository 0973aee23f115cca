package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/avatarproxy/avatarproxy/config"
	"github.com/avatarproxy/avatarproxy/proxy"
	"github.com/avatarproxy/avatarproxy/upstream"
)

// runSign prints what a URL needs for a chat id, with the first key of
// AVATAR_SIGNING_KEY:
//
//	avatarproxy sign <chatId>              the sig
//	avatarproxy sign --exp <unix> <chatId> the sig of an expiring link
//	avatarproxy sign --opaque <chatId>     the token of /avatar/t/{token}.jpg
func runSign(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opaque := fs.Bool("opaque", false, "print the opaque token instead of a signature")
	exp := fs.Int64("exp", 0, "sign an expiring link valid until this unix time")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: avatarproxy sign [--opaque | --exp <unix seconds>] <chatId>   (key from "+config.EnvName("signing-key")+")")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("sign takes exactly one chat id")
	}
	if *opaque && *exp != 0 {
		return errors.New("--opaque and --exp do not go together: opaque links do not expire")
	}
	chat := fs.Arg(0)
	if _, err := upstream.ParseChatID(chat); err != nil {
		return fmt.Errorf("%q: %w", chat, err)
	}
	keys := getenv(config.EnvName("signing-key"))
	if keys == "" {
		return errors.New(config.EnvName("signing-key") + " is not set")
	}
	cfg, err := config.Load([]string{"--upstream=none", "--storage=none", "--signing-key=" + keys}, func(string) string { return "" }, io.Discard)
	if err != nil {
		return err
	}
	s := proxy.NewSigner([][]byte{[]byte(cfg.SigningKeys[0])})
	switch {
	case *opaque:
		fmt.Fprintln(stdout, s.Seal(chat))
	case *exp != 0:
		fmt.Fprintln(stdout, s.SignExpiring(chat, *exp))
	default:
		fmt.Fprintln(stdout, s.Sign(chat))
	}
	return nil
}
