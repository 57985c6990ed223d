using System.Text.Json;
using System.Text.Json.Nodes;

namespace Orchestrator.TestKit.Browser;

/// <summary>
/// One tab of <see cref="Chromium"/>: navigates, evaluates JavaScript (results come back as JSON), and records every error the
/// page's console shows: uncaught exceptions, <c>console.error</c>, and the browser's own log errors (failed requests).
/// </summary>
public sealed class ChromiumPage : IAsyncDisposable
{
    private readonly Chromium _browser;
    private readonly List<string> _errors = [];

    internal ChromiumPage(Chromium browser, string targetId, string sessionId)
    {
        _browser = browser;
        TargetId = targetId;
        SessionId = sessionId;
    }

    internal string TargetId { get; }

    internal string SessionId { get; }

    /// <summary>The errors the console showed so far, in order.</summary>
    public IReadOnlyList<string> Errors
    {
        get
        {
            lock (_errors)
            {
                return [.. _errors];
            }
        }
    }

    public void ClearErrors()
    {
        lock (_errors)
        {
            _errors.Clear();
        }
    }

    internal Task<JsonElement> SendAsync(string method, JsonObject? parameters = null, TimeSpan? timeout = null) =>
        _browser.SendAsync(method, parameters, SessionId, timeout);

    internal void OnEvent(string method, JsonElement parameters)
    {
        string? error = method switch
        {
            "Runtime.exceptionThrown" => "uncaught: " + Describe(parameters.GetProperty("exceptionDetails")),
            "Runtime.consoleAPICalled" when parameters.GetProperty("type").GetString() is "error" or "assert" =>
                "console.error: " + string.Join(' ', parameters.GetProperty("args").EnumerateArray().Select(Value)),
            "Log.entryAdded" when parameters.GetProperty("entry").GetProperty("level").GetString() == "error" =>
                "log: " + parameters.GetProperty("entry").GetProperty("text").GetString() +
                (parameters.GetProperty("entry").TryGetProperty("url", out var url) ? " (" + url.GetString() + ")" : ""),
            _ => null,
        };
        if (error is not null)
        {
            lock (_errors)
            {
                _errors.Add(error);
            }
        }
    }

    private static string Describe(JsonElement details) =>
        details.TryGetProperty("exception", out var exception) && exception.TryGetProperty("description", out var description)
            ? description.GetString() ?? details.GetProperty("text").GetString()!
            : details.GetProperty("text").GetString()!;

    private static string Value(JsonElement arg) =>
        arg.TryGetProperty("value", out var v) ? v.ToString() : arg.TryGetProperty("description", out var d) ? d.GetString() ?? "" : arg.GetRawText();

    /// <summary>Sets the viewport (CSS pixels, scale 1).</summary>
    public Task ResizeAsync(int width, int height) =>
        SendAsync("Emulation.setDeviceMetricsOverride", new JsonObject { ["width"] = width, ["height"] = height, ["deviceScaleFactor"] = 1, ["mobile"] = false });

    /// <summary>Opens <paramref name="url"/> and waits for its load event.</summary>
    public async Task NavigateAsync(string url)
    {
        var result = await SendAsync("Page.navigate", new JsonObject { ["url"] = url });
        if (result.TryGetProperty("errorText", out var failed))
        {
            throw new InvalidOperationException($"Chromium could not open {url}: {failed.GetString()}");
        }

        await WaitForAsync("document.readyState === 'complete'", TimeSpan.FromSeconds(60));
    }

    /// <summary>Evaluates <paramref name="expression"/> in the page (awaiting a promise), returning its value as JSON.</summary>
    public async Task<JsonElement> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new JsonObject
        {
            ["expression"] = expression,
            ["awaitPromise"] = true,
            ["returnByValue"] = true,
        });
        if (result.TryGetProperty("exceptionDetails", out var details))
        {
            throw new InvalidOperationException($"JavaScript failed: {Describe(details)}\n{expression}");
        }

        var value = result.GetProperty("result");
        return value.TryGetProperty("value", out var v) ? v : default;
    }

    public async Task<T> EvaluateAsync<T>(string expression) =>
        (await EvaluateAsync(expression)).Deserialize<T>()!;

    /// <summary>
    /// Polls <paramref name="condition"/> (a JavaScript expression) until it is truthy; on timeout, fails naming the condition,
    /// the page's text and its console errors.
    /// </summary>
    public async Task WaitForAsync(string condition, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            var value = await EvaluateAsync($"!!({condition})");
            if (value.ValueKind == JsonValueKind.True)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                var text = await EvaluateAsync("document.body ? document.body.innerText.slice(0, 2000) : ''");
                throw new TimeoutException($"the page never satisfied `{condition}`; it shows:\n{text}\nconsole errors: {string.Join("\n", Errors)}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>A PNG of the page from its top: the viewport grown to the document's height, at most <paramref name="maxHeight"/>.</summary>
    public async Task<byte[]> ScreenshotAsync(int width, int maxHeight = 6000)
    {
        var height = (await EvaluateAsync("Math.ceil(document.documentElement.scrollHeight)")).GetInt32();
        await ResizeAsync(width, Math.Clamp(height, 200, maxHeight));
        var shot = await SendAsync("Page.captureScreenshot", new JsonObject { ["format"] = "png" });
        return Convert.FromBase64String(shot.GetProperty("data").GetString()!);
    }

    /// <summary>Lets the page save downloads into <paramref name="folder"/> (for its CSV, SVG and PNG buttons).</summary>
    public Task AllowDownloadsAsync(string folder) =>
        _browser.SendAsync("Browser.setDownloadBehavior", new JsonObject { ["behavior"] = "allow", ["downloadPath"] = folder });

    public async ValueTask DisposeAsync() => await _browser.ClosePageAsync(this);
}
