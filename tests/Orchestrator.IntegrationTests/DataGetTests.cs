using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Data.Download;
using Orchestrator.TestKit;
using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// <c>orchestrator data get</c> and <c>path: data:NAME</c> against a real HTTP server on 127.0.0.1 serving archives built from
/// the excerpts under tests/data (no internet here): success with unpacking, a second run that fetches nothing, a hash
/// mismatch, a resume after a cut connection, and the offline error.
/// </summary>
public sealed class DataGetTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-get-");
    private readonly LocalHttpServer _server = new();
    private readonly List<string> _log = [];

    public void Dispose()
    {
        _server.Dispose();
        _dir.Delete(recursive: true);
    }

    private static string Spec(string dataset) => $"""
        name: t
        dataset:
        {dataset}
        model:
          preset: test
        methods: [finetune]
        grid:
          sizes: [10, 20]
          subsamples: 1
          seeds: [0]
        """;

    private string Root => Path.Combine(_dir.FullName, "datasets");

    private DatasetDownloader Downloader(HttpClient http) => new(http, _log.Add) { ReadTimeout = TimeSpan.FromSeconds(20) };

    private static byte[] TarGzOf(string folder)
    {
        using var tar = new MemoryStream();
        TarFile.CreateFromDirectory(folder, tar, includeBaseDirectory: false);
        using var gz = new MemoryStream();
        using (var gzip = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(tar.ToArray());
        }

        return gz.ToArray();
    }

    private static string Sha(byte[] bytes) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));

    private DatasetSource WebnlgFromArchive(byte[] archive, string? sha) => DatasetSources.Webnlg with
    {
        Files = [new SourceFile($"{_server.BaseUrl}/webnlg.tar.gz", "webnlg.tar.gz", sha, archive.Length, Unpack.TarGz)],
    };

    [Fact]
    public async Task An_archive_is_fetched_verified_unpacked_and_named_in_a_spec_and_a_second_run_fetches_nothing()
    {
        var excerpt = TestData.Get("webnlg");
        var archive = TarGzOf(excerpt);
        _server.Serve("/webnlg.tar.gz", archive);
        var source = WebnlgFromArchive(archive, Sha(archive));
        using var http = new HttpClient();

        var fetched = await Downloader(http).GetAsync(source, Root, CancellationToken.None);
        var folder = Path.Combine(Root, "webnlg");
        Assert.Equal(folder, fetched.Directory);
        Assert.True(fetched.Files.Single().Verified);
        foreach (var file in Directory.GetFiles(excerpt, "*", SearchOption.AllDirectories))
        {
            Assert.Equal(File.ReadAllBytes(file), File.ReadAllBytes(Path.Combine(folder, Path.GetRelativePath(excerpt, file))));
        }

        Assert.False(File.Exists(Path.Combine(folder, "webnlg.tar.gz")));
        Assert.Contains($"webnlg.tar.gz\t{_server.BaseUrl}/webnlg.tar.gz\t{archive.Length}\t{Sha(archive)}\tpinned", File.ReadAllText(Path.Combine(folder, "SOURCES.tsv")));

        // A spec names it as data:webnlg; the key holds the name, and the content is exactly the excerpt's.
        using (DatasetNames.UseDirectory(Root))
        {
            var spec = Spec("  kind: webnlg\n  path: data:webnlg\n  splits: [seen, unseen]");
            var plan = SweepPlanner.PlanText(spec, OrchestratorVocabulary.Default, _dir.FullName);
            var direct = DatasetCatalog.Resolve(new DatasetSpec("webnlg", excerpt, ["seen"], null, new Dictionary<string, string>()), "/");
            Assert.All(plan.Cells, c => Assert.Equal("data:webnlg", c.Dataset.Path));
            Assert.All(plan.Cells, c => Assert.Equal(direct.ContentHash, c.Dataset.ContentHash));
            Assert.Equal(30, DatasetCatalog.Load(plan.Cells[0].Dataset).EvalFor("seen").Count);
        }

        var requests = _server.Requests.Count;
        await Downloader(http).GetAsync(source, Root, CancellationToken.None);
        Assert.Equal(requests, _server.Requests.Count);
        Assert.Contains(_log, l => l.Contains("already unpacked", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_file_whose_sum_differs_from_the_pinned_one_is_refused_and_removed()
    {
        var csv = File.ReadAllBytes(TestData.Get("e2e/devset-excerpt.csv"));
        _server.Serve("/devset.csv", csv);
        var pinned = new string('0', 64);
        var source = DatasetSources.E2e with { Files = [new SourceFile($"{_server.BaseUrl}/devset.csv", "devset.csv", pinned)] };
        using var http = new HttpClient();

        var ex = await Assert.ThrowsAsync<DatasetDownloadException>(() => Downloader(http).GetAsync(source, Root, CancellationToken.None));
        Assert.Contains($"{_server.BaseUrl}/devset.csv: SHA-256 mismatch: expected {pinned}, got {Sha(csv)}", ex.Message);
        Assert.False(File.Exists(Path.Combine(Root, "e2e", "devset.csv")));
        Assert.False(File.Exists(Path.Combine(Root, "e2e", "devset.csv.part")));
    }

    [Fact]
    public async Task A_cut_download_resumes_from_where_it_stopped_with_a_range_request()
    {
        var csv = File.ReadAllBytes(TestData.Get("e2e/devset-excerpt.csv"));
        _server.Serve("/devset.csv", csv);
        _server.CutNextAfter("/devset.csv", 20_000);
        var source = DatasetSources.E2e with { Files = [new SourceFile($"{_server.BaseUrl}/devset.csv", "devset.csv", Sha(csv))] };
        using var http = new HttpClient();

        var cut = await Assert.ThrowsAsync<DatasetDownloadException>(() => Downloader(http).GetAsync(source, Root, CancellationToken.None));
        Assert.Contains($"download of {_server.BaseUrl}/devset.csv was cut", cut.Message);
        Assert.Contains("Run the command again to resume it", cut.Message);
        var part = Path.Combine(Root, "e2e", "devset.csv.part");
        var kept = new FileInfo(part).Length;
        Assert.InRange(kept, 1, csv.Length - 1);

        var fetched = await Downloader(http).GetAsync(source, Root, CancellationToken.None);
        Assert.Equal(csv, File.ReadAllBytes(Path.Combine(Root, "e2e", "devset.csv")));
        Assert.False(File.Exists(part));
        Assert.True(fetched.Files.Single().Verified);
        Assert.Equal(("/devset.csv", $"bytes={kept}-"), _server.Requests.Last());
        Assert.Contains(_log, l => l.Contains($"resuming at byte {kept:N0}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Offline_the_command_names_the_url_and_the_error()
    {
        var closed = LocalHttpServer.FreePort();
        var (exit, _, error) = await CliCapture.RunAsync("data", "get", "e2e", "--dir", Root, "--base-url", $"http://127.0.0.1:{closed}");
        Assert.Equal(1, exit);
        Assert.Contains($"could not download http://127.0.0.1:{closed}/e2e/trainset.csv", error);
        Assert.Contains("refused", error, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task The_real_catalog_through_a_mirror_verifies_the_pinned_sums_and_reports_the_unpinned_ones()
    {
        // The mirror serves the excerpt as devset.csv: trainset.csv has no pinned sum (accepted, reported as not verified),
        // devset.csv has the published file's sum, so the excerpt is refused.
        var csv = File.ReadAllBytes(TestData.Get("e2e/devset-excerpt.csv"));
        _server.Serve("/e2e/trainset.csv", csv);
        _server.Serve("/e2e/devset.csv", csv);
        var (exit, output, error) = await CliCapture.RunAsync("data", "get", "e2e", "--dir", Root, "--base-url", _server.BaseUrl);
        Assert.Equal(1, exit);
        Assert.Contains($"trainset.csv: sha256 {Sha(csv)}", output);
        Assert.Contains("NOT VERIFIED", output);
        Assert.Contains($"{_server.BaseUrl}/e2e/devset.csv: SHA-256 mismatch: expected fc26b78cdb849c80545f513b223d1e051138b43882eeb79e3eb153e689c864f9", error);
        Assert.Equal(csv, File.ReadAllBytes(Path.Combine(Root, "e2e", "trainset.csv")));
    }

    [Fact]
    public async Task A_spec_naming_a_dataset_that_is_not_here_says_to_run_data_get()
    {
        var spec = Path.Combine(_dir.FullName, "s.yaml");
        await File.WriteAllTextAsync(spec, Spec("  kind: e2e\n  path: data:e2e/devset.csv"));
        using (DatasetNames.UseDirectory(Root))
        {
            var (exit, _, error) = await CliCapture.RunAsync("validate", spec);
            Assert.Equal(2, exit);
            Assert.Contains("dataset.path: data:e2e/devset.csv is not on this machine", error);
            Assert.Contains("Run `orchestrator data get e2e` first", error);

            Directory.CreateDirectory(Path.Combine(Root, "e2e"));
            File.Copy(TestData.Get("e2e/devset-excerpt.csv"), Path.Combine(Root, "e2e", "devset.csv"));
            var (okExit, output, okError) = await CliCapture.RunAsync("validate", spec);
            Assert.True(okExit == 0, okError);
            Assert.Contains("valid", output);

            await File.WriteAllTextAsync(spec, Spec("  kind: dart\n  path: data:e2e/devset.csv"));
            var (kindExit, _, kindError) = await CliCapture.RunAsync("validate", spec);
            Assert.Equal(2, kindExit);
            Assert.Contains("data:e2e/devset.csv holds e2e data, but dataset.kind is dart", kindError);
        }
    }

    [Fact]
    public void Xsum_articles_become_jsonl_with_topics_from_their_urls()
    {
        var folder = Path.Combine(_dir.FullName, "xsum");
        var articles = Path.Combine(folder, XsumConverter.ArticleFolder);
        Directory.CreateDirectory(articles);
        void Article(string id, string url, string summary, string body) => File.WriteAllText(Path.Combine(articles, id + ".summary"),
            $"[SN]URL[SN]\n{url}\n\n[SN]TITLE[SN]\nA title\n\n[SN]FIRST-SENTENCE[SN]\n{summary}\n\n[SN]RESTBODY[SN]\n{body}\n", new UTF8Encoding(false));
        Article("101", "http://web.archive.org/web/20150101000000/http://www.bbc.co.uk/news/world-europe-101", "A summit was held.", "Leaders met.\nThey talked.");
        Article("102", "http://web.archive.org/web/20150101000000/http://www.bbc.co.uk/sport/football/102", "A team won.", "The match ended 2-0.");
        Article("103", "http://web.archive.org/web/20150101000000/http://www.bbc.co.uk/news/business-103", "Shares rose.", "Markets were up.");
        Article("104", "http://web.archive.org/web/20150101000000/http://www.bbc.co.uk/news/uk-104", "", "No summary here.");
        File.WriteAllText(Path.Combine(folder, XsumConverter.SplitFile),
            JsonSerializer.Serialize(new Dictionary<string, string[]> { ["train"] = ["101", "103", "104"], ["validation"] = [], ["test"] = ["102", "999"] }));

        XsumConverter.Convert(folder, _log.Add);
        Assert.Contains("xsum-train.jsonl: 2 articles (0 listed in the split but not in the archive, 1 without summary, body or URL skipped)", _log);
        Assert.Contains("xsum-test.jsonl: 1 articles (1 listed in the split but not in the archive, 0 without summary, body or URL skipped)", _log);

        var data = DatasetCatalog.Load(DatasetCatalog.Resolve(new DatasetSpec("xsum", folder, ["news-to-sports"], null, new Dictionary<string, string>()), "/"));
        Assert.Equal(["101", "103"], data.TrainPool.Select(e => e.Id));
        Assert.Equal("Leaders met.\nThey talked.", data.TrainPool[0].Source);
        Assert.Equal(["A summit was held."], data.TrainPool[0].References);
        Assert.Equal(["news/world-europe", "news/business"], data.TrainPool.Select(e => e.Category));
        Assert.Equal(["102"], data.EvalFor("news-to-sports").Select(e => e.Id));
        Assert.Equal("sport/football", data.EvalFor("news-to-sports")[0].Category);
    }
}
