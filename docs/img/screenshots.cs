// Takes the README's screenshots of the results page with the tests' headless Chromium driver:
//   dotnet run docs/img/screenshots.cs -- http://127.0.0.1:PORT SWEEP OUT_DIR [STAGED_SWEEP]
// against a page serving finished sweeps; docs/img/screenshots.sh trains the README's two and serves them with `orchestrator ui`.
#:project ../../tests/Orchestrator.TestKit/Orchestrator.TestKit.csproj
using Orchestrator.TestKit.Browser;

var (url, sweep, outDir) = (args[0].TrimEnd('/'), args[1], args[2]);
var staged = args.Length > 3 ? args[3] : null;
await using var browser = await Chromium.StartAsync();
// Heights keep each PNG small (under ~150 KB): the top of long pages (a cell lists every output).
var views = new List<(string File, string Hash, string Ready, int Width, int MaxHeight)>
{
    ("web-sweep.png", $"#/sweep/{sweep}", "document.querySelector('#progress-table tbody tr')", 1100, 900),
    ("web-results.png", $"#/sweep/{sweep}/results?metric=bleu&by=method,size&a=lora&b=finetune",
        "document.querySelector('#compare-table tbody tr') && document.querySelector('#compute-table tbody tr')", 1100, 1500),
    ("web-cell.png", $"#/sweep/{sweep}/cells?state=done", "document.querySelector('#cells-table tbody tr a')", 1100, 1150),
};
if (staged is not null)
{
    views.Add(("web-stages.png", $"#/sweep/{staged}", "document.querySelector('#stage-graph g.stage-node')", 1100, 720));
}

var errors = 0;
foreach (var (file, hash, ready, width, maxHeight) in views)
{
    await using var page = await browser.NewPageAsync(width, 900);
    await page.NavigateAsync($"{url}/{hash}");
    await page.WaitForAsync(ready, TimeSpan.FromMinutes(2));
    if (file == "web-cell.png")
    {
        // The first lora cell's page.
        await page.EvaluateAsync("location.hash = [...document.querySelectorAll('#cells-table tbody tr')].find(tr => tr.cells[2].textContent === 'lora').querySelector('a').getAttribute('href')");
        await page.WaitForAsync("document.querySelector('#cell-view #outputs-table tbody tr') && document.querySelector('#curve svg path.train')", TimeSpan.FromMinutes(1));
    }

    await File.WriteAllBytesAsync(Path.Combine(outDir, file), await page.ScreenshotAsync(width, maxHeight));
    Console.WriteLine($"wrote {file}; console errors: {page.Errors.Count}");
    errors += page.Errors.Count;
}

return errors == 0 ? 0 : 1;
