// Takes the README's screenshots of the results page with the tests' headless Chromium driver:
//   dotnet run docs/img/screenshots.cs -- http://127.0.0.1:PORT SWEEP OUT_DIR
// against a page serving a finished sweep (e.g. `orchestrator demo --ui-port PORT`).
#:project ../../tests/Orchestrator.TestKit/Orchestrator.TestKit.csproj
using Orchestrator.TestKit.Browser;

var (url, sweep, outDir) = (args[0].TrimEnd('/'), args[1], args[2]);
await using var browser = await Chromium.StartAsync();
var views = new (string File, string Hash, string Ready, int Width)[]
{
    ("web-sweep.png", $"#/sweep/{sweep}", "document.querySelector('#progress-table tbody tr')", 1100),
    ("web-results.png", $"#/sweep/{sweep}/results?metric=bleu&by=method,size&a=lora&b=finetune",
        "document.querySelector('#compare-table tbody tr') && document.querySelector('#compute-table tbody tr')", 1100),
    ("web-cell.png", $"#/sweep/{sweep}/cells?state=done", "document.querySelector('#cells-table tbody tr a')", 1100),
};
foreach (var (file, hash, ready, width) in views)
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

    // The top of long pages (a cell lists every output).
    await File.WriteAllBytesAsync(Path.Combine(outDir, file), await page.ScreenshotAsync(width, maxHeight: 1500));
    Console.WriteLine($"wrote {file}; console errors: {page.Errors.Count}");
}
