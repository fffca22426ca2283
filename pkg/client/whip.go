package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// maxAnswer bounds the SDP answer PostOffer reads.
const maxAnswer = 1 << 20

// PostOffer performs a WHIP (RFC 9725) or WHEP offer/answer exchange for pc: it creates an
// offer, waits for ICE gathering to complete (no trickle), POSTs the offer to endpoint with
// token as bearer and applies the answer. It returns the session's resource URL (the
// Location header, resolved against endpoint), for PATCH and DELETE. hc nil means
// http.DefaultClient.
func PostOffer(ctx context.Context, hc *http.Client, pc *webrtc.PeerConnection, endpoint, token string) (string, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST %s: %s: %s", endpoint, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return "", fmt.Errorf("applying the answer: %w", err)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", nil
	}
	base, err := url.Parse(endpoint)
	if err != nil {
		return loc, nil
	}
	ref, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("bad Location %q: %w", loc, err)
	}
	return base.ResolveReference(ref).String(), nil
}

// DeleteResource ends a WHIP/WHEP session (RFC 9725 §4.2) politely, so that the server does
// not wait for ICE to fail; resource is what PostOffer returned ("" does nothing). It gives up
// after 3 s and reports nothing: the server ends the session by itself anyway.
func DeleteResource(hc *http.Client, resource, token string) {
	if resource == "" {
		return
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, resource, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := hc.Do(req); err == nil {
		_ = resp.Body.Close()
	}
}
