use proto::books::v1 as pb;
use test_support::both_backends;
use tonic::Code;

use crate::helpers::{bearer, book, spawn_app};

both_backends! {
    async fn a_book_can_be_created_read_updated_and_deleted(backend) {
        let app = spawn_app(backend).await;
        let ada = app.user("ada").await;
        let input = pb::Book {
            publisher: Some("Ace".to_owned()),
            isbn: Some("0-441-17271-7".to_owned()),
            price_cents: 999,
            published_year: Some(1965),
            ..book(" Dune ", "Frank Herbert")
        };

        let created = app.create(&ada, input).await.unwrap();
        assert_eq!(created.title, "Dune");
        assert_eq!(created.isbn.as_deref(), Some("9780441172719"));
        assert_eq!(created.version, 1);
        assert!(uuid::Uuid::parse_str(&created.id).is_ok());
        assert_eq!(app.get(&ada, &created.id).await.unwrap(), created);

        let change = pb::Book { id: created.id.clone(), price_cents: 1299, ..pb::Book::default() };
        let updated = app.update(&ada, change, &["price_cents"], created.version).await.unwrap();
        assert_eq!((updated.price_cents, updated.version), (1299, 2));
        assert_eq!(updated.title, "Dune", "fields outside the mask are kept");
        assert_eq!(app.get(&ada, &created.id).await.unwrap(), updated);

        let replaced = app.update(&ada, pb::Book { id: created.id.clone(), ..book("Dune Messiah", "Frank Herbert") }, &[], 0).await.unwrap();
        assert_eq!((replaced.title.as_str(), replaced.publisher.as_deref(), replaced.price_cents), ("Dune Messiah", None, 0));

        app.delete(&ada, &created.id, 0).await.unwrap();
        assert_eq!(app.get(&ada, &created.id).await.unwrap_err().code(), Code::NotFound);
        assert_eq!(app.delete(&ada, &created.id, 0).await.unwrap_err().code(), Code::NotFound);
    }

    async fn stored_values_that_no_longer_validate_are_returned_and_kept_verbatim(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("archivist").await;
        let created = app.create(&user, pb::Book { isbn: Some("0-441-17271-7".to_owned()), ..book("Dune", "Frank Herbert") }).await.unwrap();
        // A wrong check digit, and a control character: what an older, laxer rule let in.
        let (old_isbn, old_title) = ("0-441-17271-0", "Dune\u{7}");
        app.store_directly(&created.id, old_isbn, old_title).await;

        let stored = app.get(&user, &created.id).await.unwrap();
        assert_eq!((stored.isbn.as_deref(), stored.title.as_str()), (Some(old_isbn), old_title), "returned as stored");

        let change = pb::Book { id: created.id.clone(), price_cents: 1299, ..pb::Book::default() };
        let updated = app.update(&user, change, &["price_cents"], stored.version).await.unwrap();
        assert_eq!((updated.price_cents, updated.version), (1299, stored.version + 1));
        assert_eq!((updated.isbn.as_deref(), updated.title.as_str()), (Some(old_isbn), old_title), "fields outside the mask are not rewritten");
        assert_eq!(app.get(&user, &created.id).await.unwrap(), updated);
    }

    async fn an_update_that_sets_the_isbn_validates_it(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("cataloguer").await;
        let created = app.create(&user, book("Dune", "Frank Herbert")).await.unwrap();
        app.store_directly(&created.id, "0-441-17271-0", "Dune").await;
        let whole = |isbn: &str| pb::Book { id: created.id.clone(), isbn: Some(isbn.to_owned()), ..book("Dune", "Frank Herbert") };

        let refused = app.update(&user, whole("0-441-17271-0"), &[], 0).await.unwrap_err();
        let refused_by_mask = app.update(&user, whole("123"), &["isbn"], 0).await.unwrap_err();

        for status in [&refused, &refused_by_mask] {
            assert_eq!(status.code(), Code::InvalidArgument);
            let fields: Vec<String> = grpc_conventions::field_violations(status).into_iter().map(|(field, _)| field).collect();
            assert_eq!(fields, ["isbn"]);
        }
        assert_eq!(app.get(&user, &created.id).await.unwrap().isbn.as_deref(), Some("0-441-17271-0"), "nothing written");
        let replaced = app.update(&user, whole("0-441-17271-7"), &[], 0).await.unwrap();
        assert_eq!(replaced.isbn.as_deref(), Some("9780441172719"), "a valid ISBN is stored normalised");
    }

    async fn another_users_book_looks_missing_and_stays_unchanged(backend) {
        let app = spawn_app(backend).await;
        let owner = app.user("owner").await;
        let intruder = app.user("intruder").await;
        let mine = app.create(&owner, book("Mine", "Me")).await.unwrap();

        let get = app.get(&intruder, &mine.id).await.unwrap_err();
        let update = app.update(&intruder, pb::Book { id: mine.id.clone(), ..book("Stolen", "Thief") }, &[], 0).await.unwrap_err();
        let delete = app.delete(&intruder, &mine.id, 0).await.unwrap_err();
        let missing = app.get(&intruder, &uuid::Uuid::now_v7().to_string()).await.unwrap_err();

        for status in [&get, &update, &delete] {
            assert_eq!(status.code(), Code::NotFound);
            assert_eq!(status.message(), missing.message(), "no existence leak");
        }
        assert_eq!(app.get(&owner, &mine.id).await.unwrap(), mine);
    }

    async fn a_stale_version_is_refused_and_changes_nothing(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("editor").await;
        let created = app.create(&user, book("Draft", "Writer")).await.unwrap();
        let first = app.update(&user, pb::Book { id: created.id.clone(), ..book("Second draft", "Writer") }, &["title"], 1).await.unwrap();

        let stale = app.update(&user, pb::Book { id: created.id.clone(), ..book("Lost edit", "Writer") }, &["title"], 1).await.unwrap_err();
        let stale_delete = app.delete(&user, &created.id, 1).await.unwrap_err();

        assert_eq!(stale.code(), Code::FailedPrecondition);
        assert!(stale.message().contains("version 2"), "{}", stale.message());
        assert_eq!(stale_delete.code(), Code::FailedPrecondition);
        assert_eq!(app.get(&user, &created.id).await.unwrap(), first);
    }

    async fn concurrent_unconditional_updates_all_apply(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("racer").await;
        let created = app.create(&user, book("Counter", "Racer")).await.unwrap();

        let mut updates = tokio::task::JoinSet::new();
        // More racers than a retry loop would absorb: each waits for the row instead.
        for price in 1..=8 {
            let mut client = app.books.clone();
            let request = bearer(
                pb::UpdateBookRequest {
                    book: Some(pb::Book { id: created.id.clone(), price_cents: price, ..pb::Book::default() }),
                    update_mask: Some(prost_types::FieldMask { paths: vec!["price_cents".to_owned()] }),
                    expected_version: 0,
                },
                &user,
            );
            updates.spawn(async move { client.update_book(request).await.map(drop) });
        }
        let results = updates.join_all().await;

        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(app.get(&user, &created.id).await.unwrap().version, 9);
    }
}
