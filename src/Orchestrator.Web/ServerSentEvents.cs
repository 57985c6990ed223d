using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Orchestrator.Web;

/// <summary>
/// Writes a server-sent event stream: an event whenever the polled value changes (the first at once), and a comment line as
/// a heartbeat every 15 s so that proxies keep the connection open. Ends when <paramref name="ct"/> is cancelled.
/// </summary>
internal static class ServerSentEvents
{
    public static async Task StreamAsync<T>(HttpResponse response, Func<CancellationToken, Task<T>> poll, TimeSpan every, CancellationToken ct)
    {
        string? last = null;
        var quiet = TimeSpan.Zero;
        try
        {
            await response.Body.FlushAsync(ct);
            while (!ct.IsCancellationRequested)
            {
                var data = JsonSerializer.Serialize(await poll(ct), WebUi.Json);
                if (data != last)
                {
                    await response.WriteAsync($"event: progress\ndata: {data}\n\n", ct);
                    await response.Body.FlushAsync(ct);
                    last = data;
                    quiet = TimeSpan.Zero;
                }
                else if ((quiet += every) >= TimeSpan.FromSeconds(15))
                {
                    await response.WriteAsync(": keep-alive\n\n", ct);
                    await response.Body.FlushAsync(ct);
                    quiet = TimeSpan.Zero;
                }

                await Task.Delay(every, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away or the server is stopping.
        }
    }
}
