// pulumi-resource-command: a stand-in for the `command` resource provider of
// github.com/pulumi/pulumi-command, for machines whose Go module proxy does not serve that module.
//
// It is NOT the upstream provider. It implements the part of its protocol that the
// @pulumi/command 1.2.1 Node.js SDK drives for `command:local:Command` and
// `command:remote:Command` (SSH), with the upstream semantics as documented for 1.x:
//
//   - create runs `create`; update runs `update`, or `create` again when there is no `update`;
//     delete runs `delete` (when set). PULUMI_COMMAND_STDOUT / PULUMI_COMMAND_STDERR carry the
//     previous outputs to update and delete (unless addPreviousOutputInEnv is false).
//   - a change of `triggers` replaces the resource; any other input change updates it.
//   - outputs: every input plus `stdout` and `stderr` (one trailing newline trimmed).
//   - a non-zero exit fails the step with the command's output in the error.
//   - remote: SSH with a private key (optionally with a passphrase), a password or an SSH agent,
//     dialErrorLimit attempts of perDialTimeout seconds each, host keys not checked (as 1.x);
//     `environment` is sent with SSH setenv requests (the server must AcceptEnv them).
//
// Not implemented (refused with an error when used): local assetPaths/archivePaths,
// remote connection.proxy, CopyToRemote/CopyFile, and the `run` invoke.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// Version is the provider version this binary answers to (set with -ldflags -X main.Version=...).
var Version = "1.2.1"

const (
	localCommand  = "command:local:Command"
	remoteCommand = "command:remote:Command"
)

// Inputs a command resource takes; everything else in the state is an output.
var commandInputs = map[string]bool{
	"connection": true, "create": true, "update": true, "delete": true, "environment": true,
	"triggers": true, "stdin": true, "logging": true, "addPreviousOutputInEnv": true,
	"dir": true, "interpreter": true, "assetPaths": true, "archivePaths": true,
}

type commandProvider struct {
	pulumirpc.UnimplementedResourceProviderServer
	host *provider.HostClient
}

func main() {
	err := provider.Main("command", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return &commandProvider{host: host}, nil
	})
	if err != nil {
		cmdutil.ExitError(err.Error())
	}
}

var marshalOpts = plugin.MarshalOptions{KeepUnknowns: true, SkipNulls: true}

func (p *commandProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: Version}, nil
}

func (p *commandProvider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: `{"name":"command","version":"` + Version + `"}`}, nil
}

func (p *commandProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *commandProvider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (p *commandProvider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: false, SupportsPreview: false}, nil
}

func (p *commandProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (p *commandProvider) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	return nil, status.Errorf(codes.Unimplemented, "%s is not implemented by this stand-in command provider", req.GetTok())
}

func checkType(t string) error {
	if t != localCommand && t != remoteCommand {
		return fmt.Errorf("resource type %q is not implemented by this stand-in command provider "+
			"(only %s and %s)", t, localCommand, remoteCommand)
	}
	return nil
}

func (p *commandProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	t := resource.URN(req.GetUrn()).Type().String()
	if err := checkType(t); err != nil {
		return nil, err
	}
	news, err := plugin.UnmarshalProperties(req.GetNews(), plugin.MarshalOptions{KeepUnknowns: true, SkipNulls: true})
	if err != nil {
		return nil, err
	}
	var failures []*pulumirpc.CheckFailure
	fail := func(prop, reason string) {
		failures = append(failures, &pulumirpc.CheckFailure{Property: prop, Reason: reason})
	}
	if t == remoteCommand {
		conn, ok := news["connection"]
		switch {
		case !ok || conn.IsNull():
			fail("connection", "missing required property 'connection'")
		case conn.IsObject():
			if h, ok := conn.ObjectValue()["host"]; !ok || h.IsNull() {
				fail("connection.host", "missing required property 'connection.host'")
			}
			if px, ok := conn.ObjectValue()["proxy"]; ok && !px.IsNull() {
				fail("connection.proxy", "connection.proxy is not implemented by this stand-in command provider")
			}
		}
	} else {
		for _, k := range []string{"assetPaths", "archivePaths"} {
			if v, ok := news[resource.PropertyKey(k)]; ok && !v.IsNull() {
				fail(k, k+" is not implemented by this stand-in command provider")
			}
		}
	}
	return &pulumirpc.CheckResponse{Inputs: req.GetNews(), Failures: failures}, nil
}

func (p *commandProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	opts := plugin.MarshalOptions{KeepUnknowns: true, SkipNulls: true}
	oldsStruct := req.GetOldInputs()
	if oldsStruct == nil {
		oldsStruct = req.GetOlds()
	}
	olds, err := plugin.UnmarshalProperties(oldsStruct, opts)
	if err != nil {
		return nil, err
	}
	news, err := plugin.UnmarshalProperties(req.GetNews(), opts)
	if err != nil {
		return nil, err
	}
	ignored := map[string]bool{}
	for _, k := range req.GetIgnoreChanges() {
		ignored[k] = true
	}
	keys := map[string]bool{}
	for k := range olds {
		if commandInputs[string(k)] {
			keys[string(k)] = true
		}
	}
	for k := range news {
		keys[string(k)] = true
	}
	var diffs, replaces []string
	detailed := map[string]*pulumirpc.PropertyDiff{}
	for k := range keys {
		if ignored[k] {
			continue
		}
		o, hasOld := olds[resource.PropertyKey(k)]
		n, hasNew := news[resource.PropertyKey(k)]
		if hasOld && o.IsNull() {
			hasOld = false
		}
		if hasNew && n.IsNull() {
			hasNew = false
		}
		if !hasOld && !hasNew {
			continue
		}
		if hasOld && hasNew && !n.ContainsUnknowns() && o.DeepEquals(n) {
			continue
		}
		kind := pulumirpc.PropertyDiff_UPDATE
		switch {
		case !hasOld:
			kind = pulumirpc.PropertyDiff_ADD
		case !hasNew:
			kind = pulumirpc.PropertyDiff_DELETE
		}
		if k == "triggers" {
			replaces = append(replaces, k)
			kind = map[pulumirpc.PropertyDiff_Kind]pulumirpc.PropertyDiff_Kind{
				pulumirpc.PropertyDiff_ADD:    pulumirpc.PropertyDiff_ADD_REPLACE,
				pulumirpc.PropertyDiff_DELETE: pulumirpc.PropertyDiff_DELETE_REPLACE,
				pulumirpc.PropertyDiff_UPDATE: pulumirpc.PropertyDiff_UPDATE_REPLACE,
			}[kind]
		}
		diffs = append(diffs, k)
		detailed[k] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
	}
	sort.Strings(diffs)
	sort.Strings(replaces)
	changes := pulumirpc.DiffResponse_DIFF_NONE
	if len(diffs) > 0 {
		changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return &pulumirpc.DiffResponse{
		Changes: changes, Diffs: diffs, Replaces: replaces,
		DetailedDiff: detailed, HasDetailedDiff: true,
	}, nil
}

func (p *commandProvider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	urn := resource.URN(req.GetUrn())
	if err := checkType(urn.Type().String()); err != nil {
		return nil, err
	}
	ins, err := plugin.UnmarshalProperties(req.GetProperties(), plugin.MarshalOptions{KeepUnknowns: true, SkipNulls: true})
	if err != nil {
		return nil, err
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		out := outputs(ins, resource.MakeComputed(resource.NewProperty("")), resource.MakeComputed(resource.NewProperty("")))
		st, err := plugin.MarshalProperties(out, marshalOpts)
		return &pulumirpc.CreateResponse{Id: id, Properties: st}, err
	}
	in := ins.Mappable()
	stdout, stderr, err := p.run(ctx, urn, in, str(in["create"]), nil)
	if err != nil {
		return nil, err
	}
	st, err := plugin.MarshalProperties(outputs(ins, resource.NewProperty(stdout), resource.NewProperty(stderr)), marshalOpts)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: st}, nil
}

func (p *commandProvider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	// Nothing to read back: the state is what the last command printed.
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

func (p *commandProvider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	urn := resource.URN(req.GetUrn())
	opts := plugin.MarshalOptions{KeepUnknowns: true, SkipNulls: true}
	ins, err := plugin.UnmarshalProperties(req.GetNews(), opts)
	if err != nil {
		return nil, err
	}
	olds, err := plugin.UnmarshalProperties(req.GetOlds(), opts)
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		out := outputs(ins, resource.MakeComputed(resource.NewProperty("")), resource.MakeComputed(resource.NewProperty("")))
		st, err := plugin.MarshalProperties(out, marshalOpts)
		return &pulumirpc.UpdateResponse{Properties: st}, err
	}
	in := ins.Mappable()
	script := str(in["update"])
	if script == "" {
		script = str(in["create"])
	}
	stdout, stderr, err := p.run(ctx, urn, in, script, previous(in, olds.Mappable()))
	if err != nil {
		return nil, err
	}
	st, err := plugin.MarshalProperties(outputs(ins, resource.NewProperty(stdout), resource.NewProperty(stderr)), marshalOpts)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: st}, nil
}

func (p *commandProvider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	urn := resource.URN(req.GetUrn())
	state, err := plugin.UnmarshalProperties(req.GetProperties(), plugin.MarshalOptions{SkipNulls: true})
	if err != nil {
		return nil, err
	}
	in := state.Mappable()
	if script := str(in["delete"]); script != "" {
		if _, _, err := p.run(ctx, urn, in, script, previous(in, in)); err != nil {
			return nil, err
		}
	}
	return &emptypb.Empty{}, nil
}

// outputs is the state of a command resource: its inputs, stdout and stderr.
func outputs(ins resource.PropertyMap, stdout, stderr resource.PropertyValue) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range ins {
		if commandInputs[string(k)] {
			out[k] = v
		}
	}
	out["stdout"] = stdout
	out["stderr"] = stderr
	return out
}

// previous is the environment that carries the last outputs into update and delete.
func previous(in, state map[string]any) map[string]string {
	if b, ok := in["addPreviousOutputInEnv"].(bool); ok && !b {
		return nil
	}
	return map[string]string{
		"PULUMI_COMMAND_STDOUT": str(state["stdout"]),
		"PULUMI_COMMAND_STDERR": str(state["stderr"]),
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any, def float64) float64 {
	if f, ok := v.(float64); ok {
		return f
	}
	return def
}

func newID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func environment(in map[string]any, extra map[string]string) map[string]string {
	env := map[string]string{}
	if m, ok := in["environment"].(map[string]any); ok {
		for k, v := range m {
			env[k] = str(v)
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// run runs one script of a resource, locally or over SSH, and returns its trimmed output.
func (p *commandProvider) run(ctx context.Context, urn resource.URN, in map[string]any, script string,
	extraEnv map[string]string,
) (string, string, error) {
	if script == "" {
		return "", "", nil
	}
	logger := &lineLogger{ctx: ctx, host: p.host, urn: urn, mode: str(in["logging"])}
	var stdout, stderr bytes.Buffer
	outW := io.MultiWriter(&stdout, logger.stream("stdout"))
	errW := io.MultiWriter(&stderr, logger.stream("stderr"))
	var err error
	if urn.Type().String() == remoteCommand {
		err = runRemote(ctx, in, script, environment(in, extraEnv), outW, errW)
	} else {
		err = runLocal(ctx, in, script, environment(in, extraEnv), outW, errW)
	}
	logger.flush()
	out := strings.TrimSuffix(stdout.String(), "\n")
	errOut := strings.TrimSuffix(stderr.String(), "\n")
	if err != nil {
		return out, errOut, fmt.Errorf("%w: running %q:\n%s", err, script, combined(out, errOut))
	}
	return out, errOut, nil
}

func combined(out, errOut string) string {
	switch {
	case out == "":
		return errOut
	case errOut == "":
		return out
	}
	return out + "\n" + errOut
}

func runLocal(ctx context.Context, in map[string]any, script string, env map[string]string,
	stdout, stderr io.Writer,
) error {
	interpreter := []string{"/bin/sh", "-c"}
	if list, ok := in["interpreter"].([]any); ok && len(list) > 0 {
		interpreter = interpreter[:0]
		for _, v := range list {
			interpreter = append(interpreter, str(v))
		}
	}
	args := append(append([]string{}, interpreter[1:]...), script)
	cmd := exec.CommandContext(ctx, interpreter[0], args...) //nolint:gosec // running commands is the point
	cmd.Dir = str(in["dir"])
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if s := str(in["stdin"]); s != "" {
		cmd.Stdin = strings.NewReader(s)
	}
	err := cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return fmt.Errorf("exit status %d", exitErr.ExitCode())
	}
	return err
}

func runRemote(ctx context.Context, in map[string]any, script string, env map[string]string,
	stdout, stderr io.Writer,
) error {
	conn, _ := in["connection"].(map[string]any)
	client, err := dial(ctx, conn)
	if err != nil {
		return err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("ssh session: %w", err)
	}
	defer session.Close()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// The server accepts only the names its AcceptEnv lists; the rest are dropped, as upstream.
		_ = session.Setenv(k, env[k])
	}
	session.Stdout, session.Stderr = stdout, stderr
	if s := str(in["stdin"]); s != "" {
		session.Stdin = strings.NewReader(s)
	}
	done := make(chan error, 1)
	go func() { done <- session.Run(script) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = session.Signal(ssh.SIGTERM)
		return ctx.Err()
	}
	var exitErr *ssh.ExitError
	if errors.As(err, &exitErr) {
		return fmt.Errorf("Process exited with status %d", exitErr.ExitStatus())
	}
	return err
}

func dial(ctx context.Context, conn map[string]any) (*ssh.Client, error) {
	host := str(conn["host"])
	port := int(num(conn["port"], 22))
	user := str(conn["user"])
	if user == "" {
		user = "root"
	}
	var auth []ssh.AuthMethod
	if key := str(conn["privateKey"]); key != "" {
		var signer ssh.Signer
		var err error
		if pass := str(conn["privateKeyPassword"]); pass != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(key), []byte(pass))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(key))
		}
		if err != nil {
			return nil, fmt.Errorf("connection.privateKey: %w", err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	if pw := str(conn["password"]); pw != "" {
		auth = append(auth, ssh.Password(pw))
	}
	sock := str(conn["agentSocketPath"])
	if sock == "" && len(auth) == 0 {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock != "" {
		a, err := net.Dial("unix", sock)
		if err != nil {
			return nil, fmt.Errorf("ssh agent %s: %w", sock, err)
		}
		defer a.Close()
		auth = append(auth, ssh.PublicKeysCallback(agent.NewClient(a).Signers))
	}
	timeout := time.Duration(num(conn["perDialTimeout"], 15) * float64(time.Second))
	limit := int(num(conn["dialErrorLimit"], 10))
	cfg := &ssh.ClientConfig{
		User: user, Auth: auth, Timeout: timeout,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), //nolint:gosec // as upstream 1.x
	}
	addr := net.JoinHostPort(host, fmt.Sprint(port))
	var lastErr error
	for attempt := 1; limit < 0 || attempt <= max(limit, 1); attempt++ {
		client, err := ssh.Dial("tcp", addr, cfg)
		if err == nil {
			return client, nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(min(attempt, 5)) * time.Second):
		}
	}
	return nil, fmt.Errorf("failed to dial %s after %d attempts: %w", addr, max(limit, 1), lastErr)
}

// lineLogger sends each output line to the engine as an ephemeral status message, as upstream
// does; `logging` picks the streams (stdout, stderr, stdoutAndStderr (default), none).
type lineLogger struct {
	ctx  context.Context
	host *provider.HostClient
	urn  resource.URN
	mode string
	mu   sync.Mutex
	bufs map[string]*bytes.Buffer
}

type streamWriter struct {
	l    *lineLogger
	name string
}

func (l *lineLogger) stream(name string) io.Writer { return streamWriter{l: l, name: name} }

func (l *lineLogger) enabled(name string) bool {
	switch l.mode {
	case "", "stdoutAndStderr":
		return true
	case "none":
		return false
	}
	return l.mode == name
}

func (w streamWriter) Write(b []byte) (int, error) {
	l := w.l
	if l.host == nil || !l.enabled(w.name) {
		return len(b), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bufs == nil {
		l.bufs = map[string]*bytes.Buffer{}
	}
	buf := l.bufs[w.name]
	if buf == nil {
		buf = &bytes.Buffer{}
		l.bufs[w.name] = buf
	}
	buf.Write(b)
	for {
		line, err := buf.ReadString('\n')
		if err != nil {
			buf.Reset()
			buf.WriteString(line)
			break
		}
		_ = l.host.LogStatus(l.ctx, diag.Info, l.urn, strings.TrimSuffix(line, "\n"))
	}
	return len(b), nil
}

func (l *lineLogger) flush() {
	if l.host == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, buf := range l.bufs {
		if buf.Len() > 0 {
			_ = l.host.LogStatus(l.ctx, diag.Info, l.urn, buf.String())
		}
	}
}
