package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/avatarproxy/avatarproxy/config"
	"github.com/avatarproxy/avatarproxy/proxy"
	"github.com/avatarproxy/avatarproxy/upstream"
)

// runSign prints the signature of a chat id: `avatarproxy sign <chatId>`.
// The key comes from AVATAR_SIGNING_KEY (the first key signs).
func runSign(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: avatarproxy sign <chatId>   (key from "+config.EnvName("signing-key")+")")
		return errors.New("sign takes exactly one chat id")
	}
	chat := args[0]
	if _, err := upstream.ParseChatID(chat); err != nil {
		return fmt.Errorf("%q: %w", chat, err)
	}
	cfg, err := config.Load([]string{"--allow-unsigned"}, getenv, stderr)
	if err != nil && len(cfg.SigningKeys) == 0 {
		return err
	}
	if len(cfg.SigningKeys) == 0 {
		return errors.New(config.EnvName("signing-key") + " is not set")
	}
	s := proxy.NewSigner([][]byte{[]byte(cfg.SigningKeys[0])})
	fmt.Fprintln(stdout, s.Sign(chat))
	return nil
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
