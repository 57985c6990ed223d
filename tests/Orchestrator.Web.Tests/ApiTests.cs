using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Orchestrator.Core.Curves;
using Orchestrator.Results;

namespace Orchestrator.Web.Tests;

/// <summary>Every endpoint of the JSON API on the fixture's real sweep, checked against the CLI and the store.</summary>
[Collection(SweepCollection.Name)]
public sealed class ApiTests(SweepFixture sweep)
{
    private string Sweep => "/api/sweeps/" + sweep.Plan.SweepId;

    private async Task<JsonElement> JsonAsync(string path)
    {
        using var doc = JsonDocument.Parse(await sweep.GetStringAsync(path));
        return doc.RootElement.Clone();
    }

    [Fact]
    public async Task The_results_endpoint_equals_orchestrator_results_format_json_and_csv_for_any_metric_and_grouping()
    {
        foreach (var (metric, by) in new[] { ((string?)null, (string?)null), ("bleu", null), ("rougeL", "method,size"), ("bleu", "method") })
        {
            var cliArgs = new List<string> { "results", SweepFixture.Name, "--format", "json" };
            var query = new List<string>();
            if (metric is not null) { cliArgs.AddRange(["--metric", metric]); query.Add("metric=" + metric); }
            if (by is not null) { cliArgs.AddRange(["--by", by]); query.Add("by=" + by); }
            var path = $"{Sweep}/results?{string.Join('&', query)}";

            Assert.Equal(await sweep.CliAsync([.. cliArgs]), await sweep.GetStringAsync(path));
            cliArgs[3] = "csv";
            Assert.Equal(await sweep.CliAsync([.. cliArgs]), await sweep.GetStringAsync(path + "&format=csv"));
        }

        using var doc = JsonDocument.Parse(await sweep.GetStringAsync($"{Sweep}/results?metric=bleu"));
        var points = doc.RootElement.GetProperty("points").EnumerateArray().ToList();
        Assert.Equal(4, points.Count); // 2 methods × 2 sizes
        Assert.All(points, p => Assert.Equal((2, 2), (p.GetProperty("n").GetInt32(), p.GetProperty("expected").GetInt32())));
    }

    [Fact]
    public async Task Compare_equals_results_compare_and_gap_equals_the_reports_generalization_gap()
    {
        var cli = await sweep.CliAsync("results", SweepFixture.Name, "--compare", "lora", "finetune", "--format", "json");
        Assert.Equal(cli, await sweep.GetStringAsync($"{Sweep}/compare?a=lora&b=finetune"));
        using var doc = JsonDocument.Parse(cli);
        var rows = doc.RootElement.GetProperty("comparison").GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(2, rows.Count); // one per size
        Assert.All(rows, r => Assert.Equal(2, r.GetProperty("pairs").GetInt32()));
        var csv = await sweep.CliAsync("results", SweepFixture.Name, "--compare", "lora", "finetune", "--format", "csv");
        Assert.Equal(csv, await sweep.GetStringAsync($"{Sweep}/compare?a=lora&b=finetune&format=csv"));

        // This sweep has no seen/unseen splits: the gap is the report's (empty) list, as a JSON array and a header-only CSV.
        var gap = await JsonAsync($"{Sweep}/gap?metric=bleu");
        Assert.Equal(doc.RootElement.GetProperty("generalization_gap").GetRawText(), gap.GetRawText());
        Assert.Equal("dataset,split,method,size,pairs,mean_diff,sd,ci_low,ci_high", (await sweep.GetStringAsync($"{Sweep}/gap?format=csv")).Trim());

        using var bad = await sweep.Http.GetAsync($"{Sweep}/compare?a=lora&b=nosuch");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("no method 'nosuch'", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_sweep_whose_stored_spec_this_version_no_longer_reads_still_serves_every_request_of_its_results_view()
    {
        // The fixture's cells (with their stored results) under a second sweep whose spec text is not a spec this version reads.
        var cells = (await sweep.Store.GetSweepCellsAsync(sweep.Plan.SweepId)).Select(c => c.Cell).ToList();
        var id = "web-oldspec-" + Guid.NewGuid().ToString("N")[..8];
        await sweep.Store.SaveSweepAsync(new SweepRecord(id, "web-oldspec", "name: web-oldspec\nformat: from another version\n", "h", DateTimeOffset.UtcNow, cells.Count)
        {
            Metrics = ["bleu", "rouge"],
        }, cells);

        var selection = await JsonAsync($"/api/sweeps/{id}/selection");
        Assert.Empty(selection.GetProperty("scopes").EnumerateArray());
        using (var bad = await sweep.Http.GetAsync($"/api/sweeps/{id}/selection"))
        {
            Assert.Equal(HttpStatusCode.OK, bad.StatusCode);
        }

        // What the results view asks for besides (the progress, the plot, the table, the compute table): the same numbers as the fixture's sweep.
        Assert.Equal(8, (await JsonAsync($"/api/sweeps/{id}")).GetProperty("sweep").GetProperty("total").GetInt32());
        Assert.Equal((await JsonAsync($"{Sweep}/plot?metric=bleu")).GetProperty("panels").GetRawText(),
            (await JsonAsync($"/api/sweeps/{id}/plot?metric=bleu")).GetProperty("panels").GetRawText());
        Assert.Equal((await JsonAsync($"{Sweep}/results?metric=bleu")).GetProperty("points").GetRawText(),
            (await JsonAsync($"/api/sweeps/{id}/results?metric=bleu")).GetProperty("points").GetRawText());
        Assert.Equal(8, (await JsonAsync($"/api/sweeps/{id}/compute")).GetProperty("cells").GetInt32());
    }

    [Fact]
    public async Task The_sweeps_list_and_progress_count_every_cell_with_elapsed_time()
    {
        var list = (await JsonAsync("/api/sweeps")).EnumerateArray().ToList();
        var s = Assert.Single(list, x => x.GetProperty("sweep_id").GetString() == sweep.Plan.SweepId);
        Assert.Equal((8, 8, 0, 0, true), (s.GetProperty("total").GetInt32(), s.GetProperty("done").GetInt32(), s.GetProperty("failed").GetInt32(),
            s.GetProperty("running").GetInt32(), s.GetProperty("complete").GetBoolean()));
        Assert.True(s.GetProperty("elapsed_seconds").GetDouble() > 0);
        Assert.Equal(0, s.GetProperty("eta_seconds").GetDouble());
        Assert.Contains(sweep.Plan.SweepId, await sweep.GetStringAsync("/api/sweeps?format=csv"), StringComparison.Ordinal);

        var progress = await JsonAsync(Sweep);
        var methods = progress.GetProperty("methods").EnumerateArray().ToList();
        Assert.Equal(["finetune", "lora"], methods.Select(m => m.GetProperty("method").GetString()));
        Assert.All(methods, m => Assert.Equal((4, 4), (m.GetProperty("total").GetInt32(), m.GetProperty("counts").GetProperty("done").GetInt32())));
        Assert.Empty(progress.GetProperty("problems").EnumerateArray());
        Assert.Equal(["bleu", "rouge"], progress.GetProperty("metrics").EnumerateArray().Select(m => m.GetString()));
        var csv = (await sweep.GetStringAsync(Sweep + "?format=csv")).Trim().Split('\n');
        Assert.Equal(["stage,method,total,done", "main,finetune,4,4", "main,lora,4,4"], csv);

        using var missing = await sweep.Http.GetAsync("/api/sweeps/no-such-sweep");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    /// <summary>
    /// A rescore changes stored scores without a new result: the page's cached cells show the new ones as soon as the
    /// results fingerprint is read again (at most once a second per sweep).
    /// </summary>
    [Fact]
    public async Task A_rescored_score_shows_on_the_next_request()
    {
        var (cell, result) = (await sweep.Store.GetSweepCellsAsync(sweep.Plan.SweepId)).First(c => c.Result is { Status: "succeeded" });
        double before = result!.Metrics["bleu"];
        async Task<double> Shown()
        {
            var page = await JsonAsync($"{Sweep}/cells?limit=100");
            return page.GetProperty("cells").EnumerateArray().Single(c => c.GetProperty("key").GetString() == cell.CellKey)
                .GetProperty("metrics").GetProperty("bleu").GetDouble();
        }

        async Task<double> ShownWithin(double expected)
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            double shown;
            while ((shown = await Shown()) != expected && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }

            return shown;
        }

        Assert.Equal(before, await Shown()); // read (and cached) before the rescore
        try
        {
            Assert.True(await sweep.Store.UpdateMetricsAsync(cell.CellKey, result.Attempt, new Dictionary<string, double>(result.Metrics) { ["bleu"] = before + 1.5 }));
            Assert.Equal(before + 1.5, await ShownWithin(before + 1.5));
        }
        finally
        {
            await sweep.Store.UpdateMetricsAsync(cell.CellKey, result.Attempt, result.Metrics);
        }

        Assert.Equal(before, await ShownWithin(before));
    }

    [Fact]
    public async Task Cells_are_paginated_and_carry_their_scores()
    {
        var stored = (await sweep.Store.GetSweepCellsAsync(sweep.Plan.SweepId)).ToDictionary(c => c.Cell.CellKey);
        var first = await JsonAsync($"{Sweep}/cells?offset=0&limit=3");
        var last = await JsonAsync($"{Sweep}/cells?offset=6&limit=3");
        Assert.Equal((8, 3, 2), (first.GetProperty("total").GetInt32(), first.GetProperty("cells").GetArrayLength(), last.GetProperty("cells").GetArrayLength()));
        var keys = first.GetProperty("cells").EnumerateArray().Concat(last.GetProperty("cells").EnumerateArray()).Select(c => c.GetProperty("key").GetString()!).ToList();
        Assert.Equal(5, keys.Distinct().Count());
        foreach (var c in first.GetProperty("cells").EnumerateArray())
        {
            var result = stored[c.GetProperty("key").GetString()!].Result!;
            Assert.Equal(result.Metrics["bleu"], c.GetProperty("metrics").GetProperty("bleu").GetDouble());
            Assert.Equal("done", c.GetProperty("state").GetString());
        }

        var lora = await JsonAsync($"{Sweep}/cells?method=lora&limit=100");
        Assert.Equal(4, lora.GetProperty("total").GetInt32());
        var csv = (await sweep.GetStringAsync($"{Sweep}/cells?format=csv")).Trim().Split('\n');
        Assert.Equal(9, csv.Length); // header + every cell, not one page
        Assert.StartsWith("key,stage,method,size,subsample,seed,split,state,attempts,worker,error,metric:bleu", csv[0], StringComparison.Ordinal);

        using var bad = await sweep.Http.GetAsync($"{Sweep}/cells?limit=0");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task The_plot_series_have_one_line_per_method_with_the_results_means_and_cis()
    {
        var plot = await JsonAsync($"{Sweep}/plot?metric=bleu");
        Assert.Equal("bleu", plot.GetProperty("metric").GetString());
        Assert.Contains("rougeL", plot.GetProperty("metrics").EnumerateArray().Select(m => m.GetString()));
        var panel = Assert.Single(plot.GetProperty("panels").EnumerateArray());
        var lines = panel.GetProperty("lines").EnumerateArray().ToList();
        Assert.Equal(["finetune", "lora"], lines.Select(l => l.GetProperty("method").GetString()));

        using var results = JsonDocument.Parse(await sweep.CliAsync("results", SweepFixture.Name, "--metric", "bleu", "--format", "json"));
        foreach (var p in results.RootElement.GetProperty("points").EnumerateArray())
        {
            var line = lines.Single(l => l.GetProperty("method").GetString() == p.GetProperty("method").GetString());
            var point = line.GetProperty("points").EnumerateArray().Single(x => x.GetProperty("size").GetInt32() == p.GetProperty("size").GetInt32());
            foreach (var field in new[] { "mean", "ci_low", "ci_high" })
            {
                Assert.Equal(p.GetProperty(field).GetRawText(), point.GetProperty(field).GetRawText());
            }
        }
    }

    [Fact]
    public async Task Selection_shows_each_candidates_stored_dev_loss_and_the_choice_and_nothing_for_a_sweep_without_one()
    {
        Assert.Empty((await JsonAsync($"{Sweep}/selection")).GetProperty("scopes").EnumerateArray());

        var plan = await sweep.SelectionPlanAsync();

        // The stored selection cells' best dev losses, by rate; the grid cell trained with the lower one.
        var rows = await sweep.Store.GetSweepCellsAsync(plan.SweepId);
        var losses = rows.Where(r => r.Cell.Method == "selection/lora").ToDictionary(
            r => Core.Cells.CellDefinition.FromJson(r.Cell.CellJson).Training.LearningRate,
            r => JsonDocument.Parse(r.Result!.ProvenanceJson).RootElement.GetProperty("best_dev_loss").GetDouble());
        Assert.Equal(2, losses.Count);
        var best = losses.MinBy(l => l.Value).Key;
        Assert.Equal(best, Core.Cells.CellDefinition.FromJson(Assert.Single(rows, r => r.Cell.Method == "lora").Cell.CellJson).Training.LearningRate);

        var scope = Assert.Single((await JsonAsync($"/api/sweeps/{plan.SweepId}/selection")).GetProperty("scopes").EnumerateArray());
        Assert.Equal(("lora", "chosen"), (scope.GetProperty("method").GetString(), scope.GetProperty("state").GetString()));
        foreach (var candidate in scope.GetProperty("candidates").EnumerateArray())
        {
            var rate = double.Parse(candidate.GetProperty("values").GetProperty("learning_rate").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(losses[rate], candidate.GetProperty("dev_loss_mean").GetDouble(), 12);
            Assert.Equal(rate == best, candidate.GetProperty("chosen").GetBoolean());
        }

        var csv = (await sweep.GetStringAsync($"/api/sweeps/{plan.SweepId}/selection?format=csv")).Trim().Split('\n');
        Assert.Equal(3, csv.Length);
        Assert.StartsWith("method,size,state,candidate,n,expected,dev_loss_mean", csv[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Compute_sums_the_stored_wall_times_per_method()
    {
        var stored = await sweep.Store.GetSweepCellsAsync(sweep.Plan.SweepId);
        var compute = await JsonAsync($"{Sweep}/compute");
        Assert.Equal(8, compute.GetProperty("cells").GetInt32());
        foreach (var row in compute.GetProperty("rows").EnumerateArray())
        {
            var method = row.GetProperty("method").GetString();
            Assert.Equal(4, row.GetProperty("cells").GetInt32());
            Assert.Equal(stored.Where(c => c.Cell.Method == method).Sum(c => c.Result!.WallSeconds), row.GetProperty("wall_seconds").GetDouble(), 9);
        }

        Assert.Equal(3, (await sweep.GetStringAsync($"{Sweep}/compute?format=csv")).Trim().Split('\n').Length);
    }

    [Fact]
    public async Task A_cell_shows_definition_provenance_its_stored_curve_and_outputs_beside_references()
    {
        var (cell, result) = (await sweep.Store.GetSweepCellsAsync(sweep.Plan.SweepId)).First(c => c.Cell.Method == "lora");
        var view = await JsonAsync($"{Sweep}/cells/{cell.CellKey[..10]}");
        Assert.Equal(cell.CellKey, view.GetProperty("key").GetString());
        Assert.Equal(cell.Size, view.GetProperty("definition").GetProperty("size").GetInt32());
        Assert.Equal(result!.WorkerId, view.GetProperty("result").GetProperty("worker").GetString());
        Assert.Equal(JsonDocument.Parse(result.ProvenanceJson).RootElement.GetProperty("manifest_hash").GetString(),
            view.GetProperty("provenance").GetProperty("manifest_hash").GetString());

        var stored = TrainingCurve.Parse((await sweep.Store.GetCurveAsync(cell.CellKey))!);
        var curve = view.GetProperty("curve");
        Assert.Equal((stored.Steps, stored.KeptStep), (curve.GetProperty("steps").GetInt32(), curve.GetProperty("kept_step").GetInt32()));
        Assert.Equal(stored.Train.Select(p => p.Loss), curve.GetProperty("train").EnumerateArray().Select(p => p[1].GetDouble()));
        Assert.Equal([4, 8, 12], curve.GetProperty("dev").EnumerateArray().Select(p => p[0].GetInt32()));

        var outputs = view.GetProperty("outputs").EnumerateArray().ToList();
        Assert.Equal(result.Outputs, outputs.Select(o => o.GetProperty("output").GetString()));
        Assert.Equal(["sentence_bleu", "rougeL"], view.GetProperty("segment_metrics").EnumerateArray().Select(m => m.GetString()));
        foreach (var o in outputs)
        {
            var references = o.GetProperty("references").EnumerateArray().Select(r => r.GetString()!).ToList();
            Assert.NotEmpty(references);
            Assert.False(string.IsNullOrEmpty(o.GetProperty("source").GetString()));
            Assert.Equal(Evaluation.SacreBleu.Sentence(o.GetProperty("output").GetString()!, references).Score,
                o.GetProperty("scores").GetProperty("sentence_bleu").GetDouble());
        }

        var csv = (await sweep.GetStringAsync($"{Sweep}/cells/{cell.CellKey}?format=csv")).Trim().Split('\n');
        Assert.Equal("index,id,source,output,references,sentence_bleu,rougeL", csv[0]);

        using var ambiguous = await sweep.Http.GetAsync($"{Sweep}/cells/zzzzzzzz");
        Assert.Equal(HttpStatusCode.BadRequest, ambiguous.StatusCode);
    }

    [Fact]
    public async Task The_event_stream_sends_the_sweeps_counts_at_once()
    {
        using var response = await sweep.Http.GetAsync($"{Sweep}/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.Equal("event: progress", await reader.ReadLineAsync(cts.Token));
        var data = (await reader.ReadLineAsync(cts.Token))!;
        Assert.StartsWith("data: ", data, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(data["data: ".Length..]);
        Assert.Equal(sweep.Plan.SweepId, doc.RootElement.GetProperty("sweep_id").GetString());
        var version = await sweep.Store.GetResultsVersionAsync(sweep.Plan.SweepId);
        Assert.Equal($"{version.Results}:{version.AttemptSum}:{version.LastFinishedAt}", doc.RootElement.GetProperty("results_version").GetString());
    }

    [Fact]
    public async Task The_page_and_its_assets_are_served()
    {
        var html = await sweep.GetStringAsync("/");
        Assert.Contains("<script src=\"app.js\"></script>", html, StringComparison.Ordinal);
        Assert.Contains("function drawPanel", await sweep.GetStringAsync("/app.js"), StringComparison.Ordinal);
        using var css = await sweep.Http.GetAsync("/app.css");
        Assert.Equal("text/css", css.Content.Headers.ContentType?.MediaType);
        using var missing = await sweep.Http.GetAsync("/nope.js");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }
}

/// <summary>The bearer token: required off loopback, refused start without one, checked on every API request.</summary>
[Collection(SweepCollection.Name)]
public sealed class TokenTests(SweepFixture sweep)
{
    private const string Token = "0123456789abcdef-token";

    [Fact]
    public async Task Bound_to_a_non_loopback_address_it_refuses_to_start_without_a_token()
    {
        var previous = Environment.GetEnvironmentVariable(WebUiOptions.TokenEnvironmentVariable);
        Environment.SetEnvironmentVariable(WebUiOptions.TokenEnvironmentVariable, null);
        try
        {
            var ex = await Assert.ThrowsAsync<ArgumentException>(() => WebUi.StartAsync(new WebUiOptions { Port = 0, BindAddress = "0.0.0.0" }, sweep.Host.Services));
            Assert.Contains(WebUiOptions.TokenEnvironmentVariable, ex.Message, StringComparison.Ordinal);
            var empty = Path.Combine(sweep.Dir.FullName, "empty-token");
            await File.WriteAllTextAsync(empty, "\n");
            ex = await Assert.ThrowsAsync<ArgumentException>(() => WebUi.StartAsync(new WebUiOptions { Port = 0, BindAddress = "0.0.0.0", TokenFile = empty }, sweep.Host.Services));
            Assert.Contains("is empty", ex.Message, StringComparison.Ordinal);
            ex = await Assert.ThrowsAsync<ArgumentException>(() => WebUi.StartAsync(new WebUiOptions { Port = 0, BindAddress = "0.0.0.0", Token = "short" }, sweep.Host.Services));
            Assert.Contains("too short", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable(WebUiOptions.TokenEnvironmentVariable, previous);
        }
    }

    [Fact]
    public async Task Bound_to_every_address_each_API_request_needs_the_token_from_the_file()
    {
        var file = Path.Combine(sweep.Dir.FullName, "token");
        await File.WriteAllTextAsync(file, Token + "\n");
        await using var page = await WebUi.StartAsync(new WebUiOptions { Port = 0, BindAddress = "0.0.0.0", TokenFile = file }, sweep.Host.Services);
        Assert.True(page.TokenRequired);
        using var http = new HttpClient { BaseAddress = new Uri(page.LocalUrl) };
        var path = $"/api/sweeps/{sweep.Plan.SweepId}/results";

        using (var anonymous = await http.GetAsync(path))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Equal("Bearer", anonymous.Headers.WwwAuthenticate.Single().Scheme);
        }

        using (var wrong = new HttpRequestMessage(HttpMethod.Get, path))
        {
            wrong.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token + "x");
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(wrong)).StatusCode);
        }

        using (var right = new HttpRequestMessage(HttpMethod.Get, path))
        {
            right.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token);
            using var response = await http.SendAsync(right);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(await sweep.GetStringAsync(path), await response.Content.ReadAsStringAsync());
        }

        // EventSource cannot send headers: the query parameter serves the same purpose.
        using (var query = await http.GetAsync("/api/sweeps?access_token=" + Token))
        {
            Assert.Equal(HttpStatusCode.OK, query.StatusCode);
        }

        // The page itself holds no data.
        using var html = await http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, html.StatusCode);
    }

    [Fact]
    public async Task On_loopback_no_token_is_needed_and_the_token_variable_is_honoured_when_set()
    {
        Assert.False(sweep.Page.TokenRequired);
        var previous = Environment.GetEnvironmentVariable(WebUiOptions.TokenEnvironmentVariable);
        Environment.SetEnvironmentVariable(WebUiOptions.TokenEnvironmentVariable, Token);
        try
        {
            await using var page = await WebUi.StartAsync(new WebUiOptions { Port = 0 }, sweep.Host.Services);
            Assert.True(page.TokenRequired);
            using var http = new HttpClient { BaseAddress = new Uri(page.LocalUrl) };
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/sweeps")).StatusCode);
        }
        finally
        {
            Environment.SetEnvironmentVariable(WebUiOptions.TokenEnvironmentVariable, previous);
        }
    }
}
