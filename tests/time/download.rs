//! `download=1`: a time range of a real file saved through `/raw` (and `/lines`) as an
//! attachment.

use crate::common::{Server, append};

#[tokio::test(flavor = "multi_thread")]
async fn a_time_range_downloads_as_an_attachment() {
    let s = Server::start(&["{dir}/app.log"]).await;
    let lines: String = (0..10)
        .map(|i| format!("2026-12-01T10:00:0{i}Z INFO n{i}\n"))
        .collect();
    append(&s.path("app.log"), &lines);
    s.wait_last("app.log", "2026-12-01T10:00:09Z INFO n9").await;
    let url = format!(
        "{}/api/streams/app.log/raw?at=2026-12-01T10:00:02Z&until=2026-12-01T10:00:05Z&download=1",
        s.url
    );
    let resp = s.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-disposition"],
        "attachment; filename=\"app.log-2026-12-01T10_00_02Z-2026-12-01T10_00_05Z.log\""
    );
    let body = resp.text().await.unwrap();
    assert_eq!(
        body,
        lines
            .lines()
            .skip(2)
            .take(3)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );

    let resp = s
        .client
        .get(format!(
            "{}/api/streams/app.log/lines?last=2&download=true",
            s.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-disposition"],
        "attachment; filename=\"app.log.json\""
    );
    let plain = s
        .client
        .get(format!("{}/api/streams/app.log/raw", s.url))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-disposition").is_none());
    let (status, body) = s.get_json("/api/streams/app.log/raw?download=yes").await;
    assert_eq!(status, 400, "{body}");
}
