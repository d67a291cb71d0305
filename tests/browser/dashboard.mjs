// Drives pmx's dashboard in headless Chromium: reads the app list, opens an app's page,
// reads its history timeline, and tries its restart button without and then with the token.
// Opened without the token, the page shows no app (apps, history and logs need it); opened
// with it in the URL, as `pmx dashboard` prints it, the page keeps it in a cookie.
// Usage: node dashboard.mjs URL APP TOKEN; prints what it saw as one JSON line.
import { chromium } from "playwright-core";

const [url, app, token] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const seen = {};
try {
  const page = await browser.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  page.setDefaultTimeout(15000);

  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("notice").textContent.includes("token"));
  seen.without_token = await page.textContent("#notice");
  seen.rows_without_token = await page.$$eval("#apps tbody tr", (rows) => rows.length);
  seen.status_without_token = await page.evaluate(async (name) =>
    (await fetch(`/api/apps/${name}/restart`, { method: "POST" })).status, app);

  await page.goto(`${url}?token=${token}`);
  await page.waitForSelector(`#apps tr[data-app="${app}"]`);
  seen.apps = await page.$$eval("#apps tbody tr", (rows) => rows.map((r) => r.dataset.app));
  seen.summary = await page.textContent("#summary");
  // At the first render, the longest-running app's chart already holds the daemon's recent
  // samples, besides the one the list itself carries.
  seen.first_chart_points = await page.$eval("#apps tbody tr:first-child svg.spark.cpu polyline",
    (line) => line.getAttribute("points").trim().split(" ").length);

  await page.click(`#apps tr[data-app="${app}"] a`);
  await page.waitForSelector(".tl-point.tl-crash");
  await page.waitForSelector(".tl-point.tl-restart");
  seen.timeline = await page.$$eval(".tl-point", (points) =>
    points.map((p) => ({ class: p.getAttribute("class"), title: p.textContent })));
  seen.logs = await page.textContent("pre.log-out");
  // The time filter: the last 15 minutes still hold the crash.
  await page.selectOption("#window", String(15 * 60e3));
  await page.waitForSelector('svg.timeline[data-window="900000"] .tl-point.tl-crash');

  // A wrong token typed in is refused; the one the page came with works.
  await page.fill("#token", "0".repeat(48));
  await page.click("#do-restart");
  await page.waitForFunction(() => document.getElementById("notice").textContent.includes("refused"));
  seen.refused = await page.textContent("#notice");
  await page.fill("#token", "");
  await page.click("#do-restart");
  await page.waitForFunction(() => document.getElementById("notice").textContent.includes("done"));
  seen.accepted = await page.textContent("#notice");
} catch (e) {
  seen.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
