using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

namespace Orchestrator.Data.Download;

/// <summary>How far one file's download has come (<see cref="Total"/> is null when the server does not say).</summary>
public sealed record DownloadProgress(string Target, long Received, long? Total);

/// <summary>What one file's download gave: its bytes and SHA-256, and whether that sum was pinned.</summary>
public sealed record FetchedFile(string Url, string Target, long Bytes, string Sha256, bool Verified, bool Reused);

/// <summary>A dataset in place: its folder and the files fetched.</summary>
public sealed record FetchedDataset(DatasetSource Source, string Directory, IReadOnlyList<FetchedFile> Files);

/// <summary>A download that failed: the message names the URL and what went wrong.</summary>
public sealed class DatasetDownloadException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Fetches a <see cref="DatasetSource"/> into <c>ROOT/NAME/</c>: each file is streamed to <c>TARGET.part</c> (a later run resumes
/// it with an HTTP Range request), its SHA-256 checked against the pinned sum, then moved into place and unpacked if it is an
/// archive. Files already in place with the right sum are not fetched again. <c>SOURCES.tsv</c> in the folder records each file's
/// URL, size, sum and whether the sum was pinned.
/// </summary>
public sealed class DatasetDownloader(HttpClient http, Action<string> log, Action<DownloadProgress>? progress = null)
{
    public const string SourcesFile = "SOURCES.tsv";

    /// <summary>The environment variable that replaces every URL's origin with a mirror (<see cref="BaseUrl"/>).</summary>
    public const string BaseUrlEnvironmentVariable = "ORCHESTRATOR_DATA_BASE_URL";

    /// <summary>A mirror to fetch from instead of the official locations: file TARGET of dataset NAME is read from <c>BASE/NAME/TARGET</c>.</summary>
    public string? BaseUrl { get; init; }

    /// <summary>How long a read may wait for bytes before the download counts as cut.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public string UrlOf(DatasetSource source, SourceFile file) =>
        BaseUrl is { Length: > 0 } mirror ? $"{mirror.TrimEnd('/')}/{source.Name}/{file.Target}" : file.Url;

    public async Task<FetchedDataset> GetAsync(DatasetSource source, string root, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(source);
        var directory = Path.GetFullPath(Path.Combine(root, source.Name));
        Directory.CreateDirectory(directory);
        var recorded = ReadSources(directory);
        var fetched = new List<FetchedFile>();
        foreach (var file in source.Files)
        {
            fetched.Add(await GetFileAsync(source, file, directory, recorded, ct));
        }

        if (source.Convert is { } convert && fetched.Any(f => !f.Reused))
        {
            convert(directory, log);
        }

        WriteSources(directory, fetched);
        return new FetchedDataset(source, directory, fetched);
    }

    private async Task<FetchedFile> GetFileAsync(DatasetSource source, SourceFile file, string directory,
        IReadOnlyDictionary<string, string> recorded, CancellationToken ct)
    {
        var url = UrlOf(source, file);
        var target = Path.GetFullPath(Path.Combine(directory, file.Target));
        if (!target.StartsWith(directory + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new DatasetDownloadException($"{file.Target}: the target leaves the dataset folder");
        }

        // An archive is deleted once unpacked; SOURCES.tsv remembers that it was (with its sum).
        if (file.Unpack != Unpack.None && recorded.TryGetValue(file.Target, out var unpackedSum) && (file.Sha256 is null || file.Sha256 == unpackedSum))
        {
            log($"{file.Target}: already unpacked (sha256 {unpackedSum})");
            return new FetchedFile(url, file.Target, 0, unpackedSum, file.Sha256 is not null, Reused: true);
        }

        if (file.Unpack == Unpack.None && File.Exists(target))
        {
            var existing = Sha256Of(target);
            if (file.Sha256 is null ? recorded.GetValueOrDefault(file.Target) == existing : file.Sha256 == existing)
            {
                log($"{file.Target}: already here (sha256 {existing})");
                return new FetchedFile(url, file.Target, new FileInfo(target).Length, existing, file.Sha256 is not null, Reused: true);
            }
        }

        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var part = target + ".part";
        await DownloadAsync(url, file, part, ct);

        var sum = Sha256Of(part);
        var bytes = new FileInfo(part).Length;
        if (file.Sha256 is { } pinned && !string.Equals(pinned, sum, StringComparison.OrdinalIgnoreCase))
        {
            File.Delete(part);
            throw new DatasetDownloadException(
                $"{url}: SHA-256 mismatch: expected {pinned}, got {sum} ({bytes:N0} bytes). The file was removed; the source may have " +
                "changed or the download was corrupted. Run the command again; if it fails the same way, the published file is not the one this version pins.");
        }

        if (file.Sha256 is null)
        {
            log($"{file.Target}: sha256 {sum} ({bytes:N0} bytes) NOT VERIFIED: this version pins no sum for {url}; the sum is recorded in {SourcesFile}");
        }

        File.Move(part, target, overwrite: true);
        switch (file.Unpack)
        {
            case Unpack.Zip:
                log($"{file.Target}: unpacking");
                ZipFile.ExtractToDirectory(target, directory, overwriteFiles: true);
                File.Delete(target);
                break;
            case Unpack.TarGz:
                log($"{file.Target}: unpacking");
                await ExtractTarGzAsync(target, directory, ct);
                File.Delete(target);
                break;
        }

        return new FetchedFile(url, file.Target, bytes, sum, file.Sha256 is not null, Reused: false);
    }

    private async Task DownloadAsync(string url, SourceFile file, string part, CancellationToken ct)
    {
        var have = File.Exists(part) ? new FileInfo(part).Length : 0;
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (have > 0)
        {
            request.Headers.Range = new RangeHeaderValue(have, null);
        }

        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            throw new DatasetDownloadException($"could not download {url}: {ex.Message} (no network, or the host is unreachable?)", ex);
        }

        using (response)
        {
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
            {
                // The partial file already holds every byte; the sum decides whether it is right.
                return;
            }

            if (!response.IsSuccessStatusCode)
            {
                throw new DatasetDownloadException($"could not download {url}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
            }

            var resumed = have > 0 && response.StatusCode == HttpStatusCode.PartialContent;
            if (have > 0 && !resumed)
            {
                log($"{file.Target}: the server does not resume downloads; starting again");
            }

            var offset = resumed ? have : 0;
            long? total = response.Content.Headers.ContentLength is { } length ? length + offset : file.Bytes;
            if (resumed)
            {
                log($"{file.Target}: resuming at byte {offset:N0}");
            }

            await using var output = new FileStream(part, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None);
            await using var input = await response.Content.ReadAsStreamAsync(ct);
            var buffer = new byte[81920];
            var received = offset;
            var reported = -1L;
            progress?.Invoke(new DownloadProgress(file.Target, received, total));
            while (true)
            {
                int read;
                using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    timeout.CancelAfter(ReadTimeout);
                    try
                    {
                        read = await input.ReadAsync(buffer, timeout.Token);
                    }
                    catch (Exception ex) when (ex is IOException or HttpRequestException or OperationCanceledException && !ct.IsCancellationRequested)
                    {
                        await output.FlushAsync(CancellationToken.None);
                        throw new DatasetDownloadException(
                            $"download of {url} was cut after {received:N0} bytes: {(ex is OperationCanceledException ? $"no data for {ReadTimeout.TotalSeconds:F0} s" : ex.Message)}. " +
                            "Run the command again to resume it.", ex);
                    }
                }

                if (read == 0)
                {
                    break;
                }

                await output.WriteAsync(buffer.AsMemory(0, read), ct);
                received += read;
                if (received - reported >= 1 << 20)
                {
                    reported = received;
                    progress?.Invoke(new DownloadProgress(file.Target, received, total));
                }
            }

            if (total is { } expected && response.Content.Headers.ContentLength is not null && received < expected)
            {
                throw new DatasetDownloadException($"download of {url} was cut after {received:N0} of {expected:N0} bytes. Run the command again to resume it.");
            }

            progress?.Invoke(new DownloadProgress(file.Target, received, total ?? received));
        }
    }

    /// <summary>Extracts regular files and folders; an entry that would land outside the folder is refused.</summary>
    private static async Task ExtractTarGzAsync(string archive, string directory, CancellationToken ct)
    {
        await using var file = File.OpenRead(archive);
        await using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new TarReader(gzip);
        while (await reader.GetNextEntryAsync(copyData: false, ct) is { } entry)
        {
            var destination = Path.GetFullPath(Path.Combine(directory, entry.Name));
            if (!destination.StartsWith(directory + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                throw new DatasetDownloadException($"{archive}: entry '{entry.Name}' would be written outside {directory}");
            }

            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    Directory.CreateDirectory(destination);
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
                    await entry.ExtractToFileAsync(destination, overwrite: true, ct);
                    break;
            }
        }
    }

    public static string Sha256Of(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static Dictionary<string, string> ReadSources(string directory)
    {
        var path = Path.Combine(directory, SourcesFile);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!File.Exists(path))
        {
            return result;
        }

        foreach (var line in File.ReadLines(path).Skip(1))
        {
            var fields = line.Split('\t');
            if (fields.Length >= 4)
            {
                result[fields[0]] = fields[3];
            }
        }

        return result;
    }

    private static void WriteSources(string directory, IReadOnlyList<FetchedFile> files)
    {
        var sb = new StringBuilder("file\turl\tbytes\tsha256\tsum\n");
        foreach (var f in files)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{f.Target}\t{f.Url}\t{f.Bytes}\t{f.Sha256}\t{(f.Verified ? "pinned" : "unverified")}\n");
        }

        File.WriteAllText(Path.Combine(directory, SourcesFile), sb.ToString());
    }
}
