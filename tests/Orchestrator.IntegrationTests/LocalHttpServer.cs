using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// A real HTTP server on 127.0.0.1 (HttpListener) serving files from memory, with Range support, for the download code
/// path: it records each request's path and Range header, and can cut the connection of the next request for a path
/// after a number of bytes (as a dropped network would).
/// </summary>
internal sealed class LocalHttpServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentDictionary<string, byte[]> _files = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _cutAfter = new(StringComparer.Ordinal);
    private readonly Task _loop;

    public LocalHttpServer()
    {
        Port = FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public int Port { get; }

    public string BaseUrl => $"http://127.0.0.1:{Port}";

    /// <summary>Every request as (path, Range header or null), in arrival order.</summary>
    public ConcurrentQueue<(string Path, string? Range)> Requests { get; } = new();

    public void Serve(string path, byte[] bytes) => _files[path] = bytes;

    /// <summary>The next request for <paramref name="path"/> sends this many bytes of the body, then drops the connection.</summary>
    public void CutNextAfter(string path, int bytes) => _cutAfter[path] = bytes;

    /// <summary>A port on 127.0.0.1 that nothing listens on (taken and released at once).</summary>
    public static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            _ = Task.Run(() => Handle(context));
        }
    }

    private void Handle(HttpListenerContext context)
    {
        var path = context.Request.Url!.AbsolutePath;
        var range = context.Request.Headers["Range"];
        Requests.Enqueue((path, range));
        var response = context.Response;
        try
        {
            if (!_files.TryGetValue(path, out var bytes))
            {
                response.StatusCode = 404;
                response.Close();
                return;
            }

            var start = 0;
            if (range is not null && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
            {
                start = int.Parse(range["bytes=".Length..^1], System.Globalization.CultureInfo.InvariantCulture);
                if (start >= bytes.Length)
                {
                    response.StatusCode = 416;
                    response.Close();
                    return;
                }

                response.StatusCode = 206;
                response.Headers["Content-Range"] = $"bytes {start}-{bytes.Length - 1}/{bytes.Length}";
            }

            response.ContentLength64 = bytes.Length - start;
            if (_cutAfter.TryRemove(path, out var cut))
            {
                response.OutputStream.Write(bytes, start, Math.Min(cut, bytes.Length - start));
                response.OutputStream.Flush();
                response.Abort();
                return;
            }

            response.OutputStream.Write(bytes, start, bytes.Length - start);
            response.Close();
        }
        catch (HttpListenerException)
        {
            response.Abort();
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(5));
    }
}
