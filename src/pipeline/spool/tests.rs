use super::reader::Next;
use super::*;
use crate::pipeline::config::BatchCap;
use crate::record::Level;

fn rec(i: usize, n: usize) -> Record {
    Record {
        line_number: i as i32,
        ..Record::sample(Level::Info, "t", format!("{i}:{}", "x".repeat(n)))
    }
}

fn settings(dir: &Path, sync: SyncPolicy) -> SpoolSettings {
    SpoolSettings {
        dir: dir.to_path_buf(),
        max_bytes: 1 << 20,
        sync,
        segment_bytes: 4096,
    }
}

/// What the reader gives next: up to 50 records, `Idle` after `idle` without any.
async fn next(r: &mut SpoolReader, idle: Duration) -> Next {
    r.next(BatchCap::records(50), Duration::from_millis(5), idle)
        .await
}

/// Commits everything taken.
fn commit_all(spool: &Spool, got: &[Taken]) {
    for t in got {
        spool.committed(&t.marks);
    }
}

async fn take_all(r: &mut SpoolReader, want: usize) -> Vec<Taken> {
    let mut got = Vec::new();
    let mut n = 0;
    while n < want {
        match next(r, Duration::from_secs(5)).await {
            Next::Batch(t) => {
                n += t.records.len();
                got.push(t);
            }
            Next::Idle => panic!("only {n} of {want} records came back"),
            Next::Closed => break,
        }
    }
    got
}

#[tokio::test]
async fn records_come_back_in_order_and_committed_segments_go() {
    let dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(Stats::default());
    let spool = Spool::open(settings(dir.path(), SyncPolicy::Always), stats.clone()).unwrap();
    let records: Vec<Record> = (0..300).map(|i| rec(i, 100)).collect();
    for chunk in records.chunks(30) {
        assert!(
            spool
                .submit_all(chunk, Duration::from_secs(1))
                .await
                .unwrap()
        );
    }
    let mut reader = spool.reader();
    let got = take_all(&mut reader, 300).await;
    let back: Vec<&Record> = got
        .iter()
        .flat_map(|t| t.records.iter().map(|(_, r)| r))
        .collect();
    assert_eq!(back.len(), 300);
    assert!(back.iter().zip(&records).all(|(a, b)| *a == b));
    assert!(got.iter().all(|t| !t.replayed));
    assert!(spool.segments() > 5, "4 KiB segments rotate");
    commit_all(&spool, &got);
    assert_eq!(spool.segments(), 1, "only the current segment is left");
    spool.close().await;
    assert!(matches!(
        next(&mut reader, Duration::from_secs(5)).await,
        Next::Closed
    ));
    assert_eq!(
        spool.segments(),
        0,
        "a closed, fully committed spool leaves no file"
    );
}

#[tokio::test]
async fn uncommitted_records_are_replayed_with_their_ids_and_damage_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(Stats::default());
    let ids;
    {
        let spool = Spool::open(settings(dir.path(), SyncPolicy::Never), stats.clone()).unwrap();
        for i in 0..100 {
            spool.submit(&rec(i, 50)).await.unwrap();
        }
        spool.close().await;
        let mut reader = spool.reader();
        let got = take_all(&mut reader, 100).await;
        // Nothing was committed.
        spool.committed(&[(got[0].marks[0].0, 0, 0)]);
        ids = got
            .iter()
            .flat_map(|t| t.records.iter().map(|(id, _)| *id))
            .collect::<Vec<_>>();
        assert_eq!(ids.len(), 100);
    }
    // Damage: flip a byte inside the 3rd record of the first segment, cut the last segment short.
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    let first = std::fs::read(&segs[0]).unwrap();
    let one = format::encoded_len(&rec(0, 50));
    let mut damaged = first.clone();
    damaged[format::SEGMENT_HEADER.len() + 2 * one + 30] ^= 0x40;
    std::fs::write(&segs[0], damaged).unwrap();
    let last = segs.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    f.set_len(len - 7).unwrap();
    drop(f);

    let stats = Arc::new(Stats::default());
    let spool = Spool::open(settings(dir.path(), SyncPolicy::Never), stats.clone()).unwrap();
    let mut reader = spool.reader();
    let got = take_all(&mut reader, 98).await;
    let back: Vec<Uuid> = got
        .iter()
        .flat_map(|t| t.records.iter().map(|(id, _)| *id))
        .collect();
    let mut want = ids.clone();
    want.remove(99); // torn
    want.remove(2); // flipped
    assert_eq!(
        back, want,
        "every intact record, with the id it was spooled with"
    );
    assert!(got.iter().all(|t| t.replayed));
    assert_eq!(stats.spool_cut_records.get(), 2);
    assert_eq!(stats.spool_replayed.get(), 98);
    commit_all(&spool, &got);
    // Reading on past the last old segment marks them all done.
    assert!(matches!(
        next(&mut reader, Duration::from_millis(20)).await,
        Next::Idle
    ));
    assert_eq!(
        spool.segments(),
        1,
        "replayed segments are removed once committed"
    );
}

#[tokio::test]
async fn a_full_spool_refuses_requests_and_drops_datagrams_until_room_is_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(Stats::default());
    let mut s = settings(dir.path(), SyncPolicy::Interval(Duration::from_millis(10)));
    s.max_bytes = 1200;
    let spool = Spool::open(s, stats).unwrap();
    let big: Vec<Record> = (0..3).map(|i| rec(i, 500)).collect();
    assert!(
        spool
            .submit_all(&big[..2], Duration::from_millis(10))
            .await
            .unwrap()
    );
    assert!(
        !spool
            .submit_all(&big[2..], Duration::from_millis(10))
            .await
            .unwrap()
    );
    assert!(!spool.offer(&big[2]).unwrap());
    let s2 = spool.clone();
    let rec2 = big[2].clone();
    let waiting = tokio::spawn(async move { s2.submit(&rec2).await });
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(!waiting.is_finished(), "a stream source waits for room");
    let mut reader = spool.reader();
    let got = take_all(&mut reader, 2).await;
    commit_all(&spool, &got);
    // Committed records free their bytes: the stream source goes on.
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the stream source goes on once room is back")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn batches_from_the_spool_are_cut_at_the_byte_cap() {
    let dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(Stats::default());
    let spool = Spool::open(settings(dir.path(), SyncPolicy::Never), stats.clone()).unwrap();
    let records: Vec<Record> = (0..20).map(|i| rec(i, 1000)).collect();
    assert!(
        spool
            .submit_all(&records, Duration::from_secs(1))
            .await
            .unwrap()
    );
    let one = records[0].weight();
    let mut reader = spool.reader();
    let mut sizes = Vec::new();
    let mut back = Vec::new();
    while back.len() < 20 {
        // 3.5 records' weight: the record that crosses it is taken, so four per batch.
        match reader
            .next(
                BatchCap {
                    records: 100,
                    bytes: one * 7 / 2,
                },
                Duration::from_millis(5),
                Duration::from_secs(5),
            )
            .await
        {
            Next::Batch(t) => {
                assert_eq!(
                    t.weight,
                    t.records.iter().map(|(_, r)| r.weight()).sum::<usize>()
                );
                sizes.push(t.records.len());
                back.extend(t.records.iter().map(|(_, r)| r.clone()));
                spool.committed(&t.marks);
            }
            _ => panic!("records are spooled"),
        }
    }
    assert_eq!(sizes, [4, 4, 4, 4, 4]);
    assert_eq!(back, records);
    spool.close().await;
}
