using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Orchestrator.TestKit.Browser;

/// <summary>
/// A real headless Chromium (Debian's <c>chromium</c> package), driven over the Chrome DevTools Protocol on its WebSocket:
/// enough to open pages, run JavaScript in them, collect what the console reports as an error and take screenshots. One
/// browser process; each <see cref="ChromiumPage"/> is a tab attached with its own session.
/// </summary>
public sealed class Chromium : IAsyncDisposable
{
    /// <summary>Overrides where the browser is (else <c>chromium</c>, <c>chromium-browser</c> or <c>google-chrome</c> on PATH).</summary>
    public const string PathVariable = "ORCHESTRATOR_CHROMIUM";

    private readonly Process _process;
    private readonly DirectoryInfo _profile;
    private readonly ClientWebSocket _socket = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonElement>> _pending = new();
    private readonly ConcurrentDictionary<string, ChromiumPage> _pages = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _send = new(1, 1);
    private readonly CancellationTokenSource _closing = new();
    private readonly StringBuilder _log = new();
    private Task _receiving = Task.CompletedTask;
    private int _nextId;

    private Chromium(Process process, DirectoryInfo profile)
    {
        _process = process;
        _profile = profile;
    }

    /// <summary>Starts the browser and connects to it (a minute at most: the CI machine is slow).</summary>
    /// <exception cref="InvalidOperationException">No browser installed, or it did not start; the message says which and how to fix it.</exception>
    public static async Task<Chromium> StartAsync()
    {
        var executable = Locate() ?? throw new InvalidOperationException(
            $"the results page's browser tests need Chromium: install Debian's 'chromium' package (apt-get install chromium; .ci/run does) " +
            $"or set {PathVariable} to a Chromium or Chrome executable");
        var profile = Directory.CreateTempSubdirectory("orch-chromium-");
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        // No sandbox: the tests often run as root in a container, where Chromium's sandbox cannot start; it only opens local pages.
        foreach (var arg in new[]
                 {
                     "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                     "--disable-extensions", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", $"--user-data-dir={profile.FullName}", "about:blank",
                 })
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {executable}");
        var browser = new Chromium(process, profile);
        try
        {
            var endpoint = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null)
                {
                    endpoint.TrySetException(new InvalidOperationException($"{executable} exited before it listened: {browser.Log}"));
                    return;
                }

                lock (browser._log)
                {
                    if (browser._log.Length < 20_000)
                    {
                        browser._log.AppendLine(e.Data);
                    }
                }

                const string marker = "DevTools listening on ";
                if (e.Data.StartsWith(marker, StringComparison.Ordinal))
                {
                    endpoint.TrySetResult(e.Data[marker.Length..].Trim());
                }
            };
            process.OutputDataReceived += (_, _) => { };
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            var url = await endpoint.Task.WaitAsync(TimeSpan.FromSeconds(60));
            await browser._socket.ConnectAsync(new Uri(url), CancellationToken.None);
            browser._receiving = Task.Run(browser.ReceiveAsync);
            return browser;
        }
        catch (Exception ex) when (ex is TimeoutException or WebSocketException)
        {
            await browser.DisposeAsync();
            throw new InvalidOperationException($"{executable} did not open its DevTools endpoint: {ex.Message}; its log: {browser.Log}", ex);
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    /// <summary>What the browser wrote on stderr (for failure messages).</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    private static string? Locate()
    {
        if (Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } given)
        {
            return given;
        }

        var path = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        return new[] { "chromium", "chromium-browser", "google-chrome" }
            .SelectMany(name => path.Select(dir => Path.Combine(dir, name)).Append("/usr/bin/" + name))
            .FirstOrDefault(File.Exists);
    }

    /// <summary>A new tab of <paramref name="width"/> × <paramref name="height"/> CSS pixels, its console and errors recorded.</summary>
    public async Task<ChromiumPage> NewPageAsync(int width = 1280, int height = 900)
    {
        var created = await SendAsync("Target.createTarget", new JsonObject { ["url"] = "about:blank" });
        var targetId = created.GetProperty("targetId").GetString()!;
        var attached = await SendAsync("Target.attachToTarget", new JsonObject { ["targetId"] = targetId, ["flatten"] = true });
        var page = new ChromiumPage(this, targetId, attached.GetProperty("sessionId").GetString()!);
        _pages[page.SessionId] = page;
        await page.SendAsync("Runtime.enable");
        await page.SendAsync("Log.enable");
        await page.SendAsync("Page.enable");
        await page.ResizeAsync(width, height);
        return page;
    }

    internal async Task ClosePageAsync(ChromiumPage page)
    {
        _pages.TryRemove(page.SessionId, out _);
        await SendAsync("Target.closeTarget", new JsonObject { ["targetId"] = page.TargetId });
    }

    /// <summary>Sends one command (to a tab's session when <paramref name="sessionId"/> is given) and returns its result.</summary>
    internal async Task<JsonElement> SendAsync(string method, JsonObject? parameters = null, string? sessionId = null, TimeSpan? timeout = null)
    {
        var id = Interlocked.Increment(ref _nextId);
        var message = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters ?? new JsonObject() };
        if (sessionId is not null)
        {
            message["sessionId"] = sessionId;
        }

        var reply = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = reply;
        await _send.WaitAsync();
        try
        {
            await _socket.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), WebSocketMessageType.Text, true, CancellationToken.None);
        }
        finally
        {
            _send.Release();
        }

        try
        {
            return await reply.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"Chromium did not answer {method} in time; its log: {Log}");
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    private async Task ReceiveAsync()
    {
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        try
        {
            while (_socket.State == WebSocketState.Open && !_closing.IsCancellationRequested)
            {
                var read = await _socket.ReceiveAsync(buffer, _closing.Token);
                if (read.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }

                message.Write(buffer, 0, read.Count);
                if (!read.EndOfMessage)
                {
                    continue;
                }

                Dispatch(message.ToArray());
                message.SetLength(0);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException)
        {
            // The browser closed or is being closed.
        }

        foreach (var waiting in _pending.Values)
        {
            waiting.TrySetException(new InvalidOperationException($"the connection to Chromium closed; its log: {Log}"));
        }
    }

    private void Dispatch(byte[] raw)
    {
        using var doc = JsonDocument.Parse(raw);
        var root = doc.RootElement;
        if (root.TryGetProperty("id", out var id))
        {
            if (_pending.TryGetValue(id.GetInt32(), out var reply))
            {
                if (root.TryGetProperty("error", out var error))
                {
                    reply.TrySetException(new InvalidOperationException($"DevTools error: {error.GetRawText()}"));
                }
                else
                {
                    reply.TrySetResult(root.GetProperty("result").Clone());
                }
            }

            return;
        }

        if (root.TryGetProperty("sessionId", out var session) && _pages.TryGetValue(session.GetString()!, out var page))
        {
            page.OnEvent(root.GetProperty("method").GetString()!, root.TryGetProperty("params", out var p) ? p.Clone() : default);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State == WebSocketState.Open)
            {
                using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                var id = Interlocked.Increment(ref _nextId);
                await _socket.SendAsync(Encoding.UTF8.GetBytes($"{{\"id\":{id},\"method\":\"Browser.close\"}}"), WebSocketMessageType.Text, true, quick.Token);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            // Killed below.
        }

        if (!_process.WaitForExit(5000))
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }

        await _closing.CancelAsync();
        await _receiving;
        _socket.Dispose();
        _process.Dispose();
        _closing.Dispose();
        _send.Dispose();
        try
        {
            _profile.Delete(recursive: true);
        }
        catch (IOException)
        {
            // A crash reporter still writing; the temp folder is cleaned by the OS.
        }
    }
}
