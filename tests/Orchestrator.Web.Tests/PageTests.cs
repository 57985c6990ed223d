using System.Globalization;
using System.Text.Json;
using Orchestrator.Core.Curves;
using Orchestrator.Cli;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Worker;
using Orchestrator.TestKit.Browser;

namespace Orchestrator.Web.Tests;

/// <summary>
/// The page as a researcher sees it: a real headless Chromium opens the fixture's pages (served by the embedded host that
/// trained the sweep) and reads what they show, compared with the command line and the store.
/// </summary>
[Collection(SweepCollection.Name)]
public sealed class PageTests(SweepFixture sweep)
{
    private string SweepHash => "#/sweep/" + sweep.Plan.SweepId;

    /// <summary>A fresh load of <paramref name="hash"/> (via about:blank, so nothing of the previous view remains), then waits for <paramref name="ready"/>.</summary>
    private async Task<ChromiumPage> OpenAsync(string hash, string ready, string? baseUrl = null)
    {
        var page = await (await sweep.BrowserAsync()).NewPageAsync();
        await page.NavigateAsync((baseUrl ?? sweep.BaseUrl) + "/" + hash);
        await page.WaitForAsync(ready);
        return page;
    }

    private sealed record ResultRow(Dictionary<string, string> Data, List<string> Cells);

    [Fact]
    public async Task Every_page_loads_without_console_errors()
    {
        var cell = (await sweep.Store.GetSweepCellsAsync(sweep.Plan.SweepId)).First().Cell;
        (string Hash, string Ready)[] views =
        [
            ("#/", $"document.querySelector('#sweeps-table tr[data-sweep=\"{sweep.Plan.SweepId}\"]')"),
            (SweepHash, "document.querySelector('#progress-table tbody tr') && !document.getElementById('live').hidden"),
            (SweepHash + "/results?metric=bleu&by=method,size&a=lora&b=finetune&log=1",
                "document.querySelector('#results-table tbody tr') && document.querySelector('#compare-table tbody tr') && document.querySelector('#plot svg path.line')"),
            (SweepHash + "/cells", "document.querySelectorAll('#cells-table tbody tr').length === 8"),
            (SweepHash + "/cell/" + cell.CellKey, "document.querySelector('#cell-view #outputs-table tbody tr') && document.querySelector('#curve svg path.train')"),
        ];
        foreach (var (hash, ready) in views)
        {
            await using var page = await OpenAsync(hash, ready);
            Assert.True(page.Errors.Count == 0, $"{hash}: {string.Join("\n", page.Errors)}");
            Assert.Null(await page.EvaluateAsync<string?>("document.getElementById('error')?.textContent ?? null"));
            // What the page writes itself (not the JSON shown as it is stored, nor the model's outputs).
            var text = await page.EvaluateAsync<string>(
                "(() => { const v = document.getElementById('view').cloneNode(true); v.querySelectorAll('pre, details, #outputs-table').forEach(e => e.remove()); return v.textContent; })()");
            Assert.False(System.Text.RegularExpressions.Regex.IsMatch(text, @"\b(null|undefined|NaN)\b"), $"{hash} shows a missing value as text:\n{text}");
        }
    }

    [Fact]
    public async Task A_sweep_with_a_selection_shows_its_candidates_and_the_choice_on_its_results_page()
    {
        var plan = await sweep.SelectionPlanAsync();
        var report = JsonDocument.Parse(await sweep.GetStringAsync($"/api/sweeps/{plan.SweepId}/selection")).RootElement;
        var chosen = report.GetProperty("scopes")[0].GetProperty("candidates").EnumerateArray().Single(c => c.GetProperty("chosen").GetBoolean());
        await using var page = await OpenAsync($"#/sweep/{plan.SweepId}/results", "document.querySelector('#selection-table tbody tr')");
        Assert.True(page.Errors.Count == 0, string.Join("\n", page.Errors));
        var rows = await page.EvaluateAsync<string[][]>(
            "[...document.querySelectorAll('#selection-table tbody tr')].map(r => [r.dataset.candidate, r.dataset.chosen, r.dataset.mean])");
        Assert.Equal(2, rows.Length);
        var shown = Assert.Single(rows, r => r[1] == "1");
        Assert.Equal(chosen.GetProperty("label").GetString(), shown[0]);
        Assert.Equal(chosen.GetProperty("dev_loss_mean").GetDouble(), double.Parse(shown[2], CultureInfo.InvariantCulture), 12);
        await using var plain = await OpenAsync(SweepHash + "/results", "document.querySelector('#results-table tbody tr')");
        Assert.Equal(0, await plain.EvaluateAsync<int>("document.querySelectorAll('#selection').length")); // a sweep without one shows none
    }

    private sealed record StageNode(string Stage, int Done, int Total, string Text, double X, double Y, double Width, double Height);

    private sealed record StageEdge(string From, string To, double X1, double X2);

    [Fact]
    public async Task A_staged_sweeps_page_draws_its_stage_graph_one_node_per_stage_and_one_edge_per_need()
    {
        var plan = await sweep.StagedPlanAsync();
        var api = JsonDocument.Parse(await sweep.GetStringAsync($"/api/sweeps/{plan.SweepId}")).RootElement;
        var stages = api.GetProperty("stages").EnumerateArray()
            .Select(st => (Stage: st.GetProperty("stage").GetString()!, Needs: st.GetProperty("needs").EnumerateArray().Select(n => n.GetString()!).ToList(),
                Total: st.GetProperty("total").GetInt32()))
            .ToList();
        Assert.Equal(["main", "mid", "src"], stages.Select(st => st.Stage).Order(StringComparer.Ordinal));

        await using var page = await OpenAsync($"#/sweep/{plan.SweepId}", "document.querySelectorAll('#stage-graph g.stage-node').length === 3");
        Assert.True(page.Errors.Count == 0, string.Join("\n", page.Errors));
        var nodes = await page.EvaluateAsync<List<StageNode>>("""
            [...document.querySelectorAll('#stage-graph g.stage-node')].map(g => {
              const b = g.querySelector('rect').getBBox();
              return { Stage: g.dataset.stage, Done: +g.dataset.done, Total: +g.dataset.total, Text: g.textContent, X: b.x, Y: b.y, Width: b.width, Height: b.height };
            })
            """);
        var edges = await page.EvaluateAsync<List<StageEdge>>("""
            [...document.querySelectorAll('#stage-graph path.stage-edge')].map(p => {
              const [a, b] = [p.getPointAtLength(0), p.getPointAtLength(p.getTotalLength())];
              return { From: p.dataset.from, To: p.dataset.to, X1: a.x, X2: b.x };
            })
            """);

        // One node per stage with its cells, all done; one edge per stage a stage needs (mid ← src, main ← mid, main ← src).
        Assert.Equal(stages.Select(st => (st.Stage, st.Total, st.Total)).Order(), nodes.Select(n => (n.Stage, n.Done, n.Total)).Order());
        Assert.All(nodes, n => Assert.Contains($"{n.Total}/{n.Total} done", n.Text, StringComparison.Ordinal));
        Assert.Equal(stages.SelectMany(st => st.Needs.Select(need => (need, st.Stage))).Order(), edges.Select(e => (e.From, e.To)).Order());
        Assert.Equal([("mid", "main"), ("src", "main"), ("src", "mid")], edges.Select(e => (e.From, e.To)).Order());

        // Drawn left to right by depth: src, then mid, then main; each edge leaves its source's right side and ends at its target's left.
        var at = nodes.ToDictionary(n => n.Stage);
        Assert.True(at["src"].X < at["mid"].X && at["mid"].X < at["main"].X, string.Join(", ", nodes));
        Assert.All(edges, e =>
        {
            Assert.Equal(at[e.From].X + at[e.From].Width, e.X1, 1);
            Assert.InRange(e.X2, at[e.To].X - 8, at[e.To].X);
        });
        Assert.All(nodes.SelectMany(a => nodes.Where(b => string.CompareOrdinal(a.Stage, b.Stage) < 0).Select(b => (a, b))), pair =>
            Assert.False(pair.a.X < pair.b.X + pair.b.Width && pair.b.X < pair.a.X + pair.a.Width &&
                         pair.a.Y < pair.b.Y + pair.b.Height && pair.b.Y < pair.a.Y + pair.a.Height, $"{pair.a.Stage} overlaps {pair.b.Stage}"));

        // No edge runs through a node other than its two ends (an edge that skips a column goes around the one between).
        var crossings = await page.EvaluateAsync<List<string>>("""
            (() => {
              const boxes = [...document.querySelectorAll('#stage-graph g.stage-node')].map(g => [g.dataset.stage, g.querySelector('rect').getBBox()]);
              const found = [];
              for (const p of document.querySelectorAll('#stage-graph path.stage-edge')) {
                for (let i = 0; i <= 100; i++) {
                  const pt = p.getPointAtLength(p.getTotalLength() * i / 100);
                  for (const [stage, b] of boxes) {
                    if (stage !== p.dataset.from && stage !== p.dataset.to && pt.x > b.x && pt.x < b.x + b.width && pt.y > b.y && pt.y < b.y + b.height)
                      found.push(`${p.dataset.from} -> ${p.dataset.to} crosses ${stage}`);
                  }
                }
              }
              return [...new Set(found)];
            })()
            """);
        Assert.Empty(crossings);

        // A sweep without stages draws none.
        await using var plain = await OpenAsync(SweepHash, "document.querySelector('#progress-table tbody tr')");
        Assert.Equal(0, await plain.EvaluateAsync<int>("document.querySelectorAll('#stage-graph').length"));
    }

    [Fact]
    public async Task The_results_table_shown_equals_orchestrator_results_format_json_and_the_comparison_equals_results_compare()
    {
        foreach (var (metric, by) in new[] { ("bleu", "dataset,split,method,size"), ("rougeL", "method,size"), ("bleu", "method") })
        {
            using var cli = JsonDocument.Parse(await sweep.CliAsync("results", SweepFixture.Name, "--metric", metric, "--by", by, "--format", "json"));
            var expected = cli.RootElement.GetProperty("points").EnumerateArray().ToList();
            await using var page = await OpenAsync($"{SweepHash}/results?metric={metric}&by={by}",
                $"document.getElementById('metric')?.value === '{metric}' && document.querySelector('#results-table tbody tr')");
            var shown = await page.EvaluateAsync<List<ResultRow>>(
                "[...document.querySelectorAll('#results-table tbody tr')].map(tr => ({ Data: { ...tr.dataset }, Cells: [...tr.cells].map(c => c.textContent) }))");

            Assert.Equal(expected.Count, shown.Count);
            var groups = by.Split(',');
            foreach (var (want, got) in expected.Zip(shown))
            {
                foreach (var key in groups)
                {
                    Assert.Equal(want.GetProperty(key).ToString(), got.Data[key]);
                }

                Assert.Equal(metric, got.Data["metric"]);
                Assert.Equal(want.GetProperty("n").GetInt32().ToString(CultureInfo.InvariantCulture), got.Data["n"]);
                Assert.Equal(want.GetProperty("expected").GetInt32().ToString(CultureInfo.InvariantCulture), got.Data["expected"]);
                foreach (var (field, attribute) in new[] { ("mean", "mean"), ("ci_low", "ciLow"), ("ci_high", "ciHigh") })
                {
                    Assert.Equal(want.GetProperty(field).GetDouble(), double.Parse(got.Data[attribute], CultureInfo.InvariantCulture));
                }

                // What the eye reads: the group's values, n/expected, and mean ± half-width to two decimals.
                var text = got.Cells;
                Assert.Equal(groups.Select(k => want.GetProperty(k).ToString()), text.Take(groups.Length));
                Assert.Equal($"{want.GetProperty("n").GetInt32()}/{want.GetProperty("expected").GetInt32()}", text[groups.Length]);
                var parts = text[groups.Length + 1].Split(" ± ");
                Assert.Equal(want.GetProperty("mean").GetDouble(), double.Parse(parts[0], CultureInfo.InvariantCulture), 0.0051);
                Assert.Equal(want.GetProperty("ci_half_width").GetDouble(), double.Parse(parts[1], CultureInfo.InvariantCulture), 0.0051);
            }
        }

        using var compare = JsonDocument.Parse(await sweep.CliAsync("results", SweepFixture.Name, "--compare", "lora", "finetune", "--metric", "bleu", "--format", "json"));
        await using var comparePage = await OpenAsync($"{SweepHash}/results?metric=bleu&a=lora&b=finetune", "document.querySelector('#compare-table tbody tr')");
        var diffs = await comparePage.EvaluateAsync<List<double>>("[...document.querySelectorAll('#compare-table tbody tr')].map(tr => +tr.dataset.meanDiff)");
        Assert.Equal(compare.RootElement.GetProperty("comparison").GetProperty("rows").EnumerateArray().Select(r => r.GetProperty("mean_diff").GetDouble()), diffs);
        Assert.Equal("lora", await comparePage.EvaluateAsync<string>("document.getElementById('compare-a').value"));
    }

    private sealed record PlotPanel(string Title, List<string> Lines, List<string> Bands, List<int> Vertices);

    [Fact]
    public async Task The_plot_has_one_line_and_one_CI_band_per_method_and_downloads_as_SVG_and_PNG()
    {
        await using var page = await OpenAsync($"{SweepHash}/results?metric=bleu", "document.querySelector('#plot svg.plot path.line')");
        var panels = await page.EvaluateAsync<List<PlotPanel>>("""
            [...document.querySelectorAll('#plot svg.plot')].map(svg => ({
              Title: svg.dataset.panel,
              Lines: [...svg.querySelectorAll('path.line')].map(p => p.dataset.method),
              Bands: [...svg.querySelectorAll('path.band')].map(p => p.dataset.method),
              Vertices: [...svg.querySelectorAll('path.line')].map(p => p.getAttribute('d').split('L').length),
            }))
            """);
        var panel = Assert.Single(panels);
        Assert.Equal(["finetune", "lora"], panel.Lines);
        Assert.Equal(["finetune", "lora"], panel.Bands);
        Assert.Equal([2, 2], panel.Vertices); // one vertex per training-set size

        var downloads = Directory.CreateTempSubdirectory("orch-downloads-");
        try
        {
            await page.AllowDownloadsAsync(downloads.FullName);
            await page.EvaluateAsync("document.getElementById('download-svg').click()");
            await page.EvaluateAsync("document.getElementById('download-png').click()");
            var svg = await WaitForFileAsync(downloads, "plot-bleu.svg");
            var png = await WaitForFileAsync(downloads, "plot-bleu.png");
            var document = System.Xml.Linq.XDocument.Parse(await File.ReadAllTextAsync(svg));
            var paths = document.Descendants().Where(e => e.Name.LocalName == "path").Select(e => (string?)e.Attribute("class")).ToList();
            Assert.Equal((2, 2), (paths.Count(c => c == "line"), paths.Count(c => c == "band")));
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], (await File.ReadAllBytesAsync(png)).Take(4));
        }
        finally
        {
            downloads.Delete(recursive: true);
        }
    }

    private static async Task<string> WaitForFileAsync(DirectoryInfo folder, string name)
    {
        var path = Path.Combine(folder.FullName, name);
        for (var i = 0; i < 300 && !File.Exists(path); i++)
        {
            await Task.Delay(100);
        }

        Assert.True(File.Exists(path), $"the page did not download {name}: {string.Join(", ", folder.GetFiles().Select(f => f.Name))}");
        return path;
    }

    [Fact]
    public async Task A_cell_page_shows_its_stored_training_curve_and_its_outputs_beside_references()
    {
        var (cell, result) = (await sweep.Store.GetSweepCellsAsync(sweep.Plan.SweepId)).First(c => c.Cell.Method == "lora");
        var curve = TrainingCurve.Parse((await sweep.Store.GetCurveAsync(cell.CellKey))!);
        await using var page = await OpenAsync($"{SweepHash}/cell/{cell.CellKey}", "document.querySelector('#cell-view #outputs-table tbody tr')");

        Assert.Equal(curve.Train.Count, await page.EvaluateAsync<int>("document.querySelector('#curve svg path.train').getAttribute('d').split('L').length"));
        Assert.Equal(curve.Dev.Count(p => !double.IsNaN(p.Loss)), await page.EvaluateAsync<int>("document.querySelectorAll('#curve svg circle').length"));
        Assert.Equal($"kept step {curve.KeptStep}", await page.EvaluateAsync<string>("[...document.querySelectorAll('#curve svg text')].map(t => t.textContent).find(t => t.startsWith('kept step'))"));

        var outputs = await page.EvaluateAsync<List<List<string>>>(
            "[...document.querySelectorAll('#outputs-table tbody tr')].map(tr => [...tr.cells].map(c => c.textContent))");
        Assert.Equal(result!.Outputs, outputs.Select(row => row[2]));
        Assert.All(outputs, row => Assert.False(string.IsNullOrEmpty(row[3]), "each output shows its references"));
        Assert.Contains(cell.CellKey, await page.EvaluateAsync<string>("document.getElementById('provenance').textContent"), StringComparison.Ordinal);
        Assert.Contains(result.WorkerId, await page.EvaluateAsync<string>("document.getElementById('provenance').textContent"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_sweep_page_updates_live_while_cells_finish_without_reloading()
    {
        // A second sweep on the same host, its cells long enough that the page opens before the last finishes.
        var plan = SweepPlanner.PlanText(SweepFixture.Spec("web-live", "7", steps: 90), OrchestratorVocabulary.Default, sweep.Dir.FullName);
        await SweepSubmitter.SubmitAsync(sweep.Grains, plan);
        await using var page = await OpenAsync("#/sweep/" + plan.SweepId, "document.getElementById('done-count')");
        await page.EvaluateAsync("""
            window.marker = 'same document';
            window.seen = [];
            setInterval(() => {
              const v = +document.getElementById('done-count')?.textContent;
              if (window.seen[window.seen.length - 1] !== v) window.seen.push(v);
            }, 50);
            """);

        var total = plan.Cells.Count;
        await page.WaitForAsync($"window.seen && window.seen[window.seen.length - 1] === {total}", TimeSpan.FromMinutes(5));
        var seen = await page.EvaluateAsync<List<int>>("window.seen");
        Assert.True(seen[0] < total, $"the page opened after the sweep finished ({string.Join(", ", seen)}): nothing to watch");
        Assert.Equal(seen.Order(), seen);
        Assert.Equal("same document", await page.EvaluateAsync<string>("window.marker"));
        Assert.False(await page.EvaluateAsync<bool>("document.getElementById('live').hidden"));
        await page.WaitForAsync("[...document.querySelectorAll('#progress-table tbody tr')].every(tr => tr.cells[3].textContent === tr.cells[2].textContent)");
        Assert.Empty(page.Errors);

        var final = await SweepSubmitter.WaitAsync(sweep.Grains, plan.SweepId, null, TimeSpan.FromMilliseconds(250), CancellationToken.None);
        Assert.Equal(total, final.Done);
    }

    [Fact]
    public async Task Bound_to_a_non_loopback_address_the_page_shows_nothing_without_the_token_and_everything_with_it()
    {
        const string token = "browser-token-0123456789";
        await using var guarded = await WebUi.StartAsync(new WebUiOptions { Port = 0, BindAddress = "0.0.0.0", Token = token }, sweep.Host.Services);
        var baseUrl = guarded.LocalUrl.TrimEnd('/');

        await using (var anonymous = await OpenAsync("#/", "document.getElementById('error')", baseUrl))
        {
            Assert.Contains("bearer token is required", await anonymous.EvaluateAsync<string>("document.getElementById('error').textContent"), StringComparison.Ordinal);
            Assert.Contains(anonymous.Errors, e => e.Contains("401", StringComparison.Ordinal));
            Assert.Equal(0, await anonymous.EvaluateAsync<int>("document.querySelectorAll('#sweeps-table').length"));
        }

        // The token in the link is kept for the tab and taken out of the address bar; the live stream passes it as a query parameter.
        await using var page = await OpenAsync($"?token={token}{SweepHash}", "document.querySelector('#progress-table tbody tr') && !document.getElementById('live').hidden", baseUrl);
        Assert.DoesNotContain(token, await page.EvaluateAsync<string>("location.href"), StringComparison.Ordinal);
        Assert.Empty(page.Errors);
        await page.EvaluateAsync("location.hash = '#/'");
        await page.WaitForAsync($"document.querySelector('#sweeps-table tr[data-sweep=\"{sweep.Plan.SweepId}\"]')");
        Assert.Empty(page.Errors);
    }
}
