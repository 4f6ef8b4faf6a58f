use std::collections::HashSet;

use proto::books::v1 as pb;
use test_support::both_backends;
use tonic::Code;

use crate::helpers::{book, spawn_app};

fn ids(books: &[pb::Book]) -> Vec<String> {
    books.iter().map(|b| b.id.clone()).collect()
}

both_backends! {
    async fn pages_of_seven_walk_250_books_newest_first_without_gaps_or_duplicates(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("collector").await;
        let mut created = Vec::new();
        for n in 0..250 {
            created.push(app.create(&user, book(&format!("Book {n}"), "Author")).await.unwrap().id);
        }

        let walked = app.list_all(&user, pb::ListBooksRequest { page_size: 7, ..Default::default() }).await;

        created.reverse();
        assert_eq!(ids(&walked), created);
    }

    async fn inserts_during_a_walk_shift_nothing_already_ahead_of_the_cursor(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("busy").await;
        for n in 0..60 {
            app.create(&user, book(&format!("Old {n}"), "Author")).await.unwrap();
        }
        let before: Vec<String> = ids(&app.list_all(&user, pb::ListBooksRequest { page_size: 100, ..Default::default() }).await);

        // Another client inserts between every two pages the reader fetches.
        let mut walked = Vec::new();
        let mut request = pb::ListBooksRequest { page_size: 7, ..Default::default() };
        let mut inserted = 0;
        loop {
            let page = app.list(&user, request.clone()).await.unwrap();
            walked.extend(page.books);
            if page.next_page_token.is_empty() {
                break;
            }
            request.page_token = page.next_page_token;
            for _ in 0..2 {
                app.create(&user, book(&format!("New {inserted}"), "Author")).await.unwrap();
                inserted += 1;
            }
        }

        let walked = ids(&walked);
        let unique: HashSet<&String> = walked.iter().collect();
        assert_eq!(unique.len(), walked.len(), "no duplicates");
        assert_eq!(walked, before, "every book that existed is seen once, in order, and nothing else");
        assert_eq!(inserted, 16);
    }

    async fn query_and_author_filters_combine(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("reader").await;
        app.create(&user, book("The Left Hand of Darkness", "Ursula K. Le Guin")).await.unwrap();
        app.create(&user, book("A Wizard of Earthsea", "Ursula K. Le Guin")).await.unwrap();
        app.create(&user, book("Darkness at Noon", "Arthur Koestler")).await.unwrap();
        app.create(&user, book("100% Pure_Fiction", "Nobody")).await.unwrap();
        let titles = |books: Vec<pb::Book>| books.into_iter().map(|b| b.title).collect::<Vec<_>>();
        let search = |query: &str, author: &str| pb::ListBooksRequest { query: query.to_owned(), author: author.to_owned(), ..Default::default() };

        assert_eq!(titles(app.list_all(&user, search("DARKNESS", "")).await), ["Darkness at Noon", "The Left Hand of Darkness"]);
        assert_eq!(titles(app.list_all(&user, search("le guin", "")).await), ["A Wizard of Earthsea", "The Left Hand of Darkness"]);
        assert_eq!(titles(app.list_all(&user, search("darkness", "Ursula K. Le Guin")).await), ["The Left Hand of Darkness"]);
        assert_eq!(titles(app.list_all(&user, search("", "ursula k. le guin")).await), Vec::<String>::new(), "author is exact");
        assert_eq!(titles(app.list_all(&user, search("0% p", "")).await), ["100% Pure_Fiction"]);
        assert_eq!(titles(app.list_all(&user, search("%", "")).await), ["100% Pure_Fiction"], "wildcards match literally");
        assert_eq!(titles(app.list_all(&user, search("e_f", "")).await), ["100% Pure_Fiction"]);
    }

    async fn only_admins_list_every_users_books(backend) {
        let app = spawn_app(backend).await;
        let alice = app.user("alice").await;
        let bob = app.user("bob").await;
        let admin = app.admin("admin").await;
        app.create(&alice, book("Alice's", "A")).await.unwrap();
        app.create(&bob, book("Bob's", "B")).await.unwrap();
        let all = pb::ListBooksRequest { all: true, ..Default::default() };

        assert_eq!(app.list_all(&admin, all.clone()).await.len(), 2);
        assert_eq!(app.list_all(&admin, pb::ListBooksRequest::default()).await.len(), 0, "an admin's own list is its own");
        assert_eq!(app.list(&alice, all).await.unwrap_err().code(), Code::PermissionDenied);
        assert_eq!(app.list_all(&alice, pb::ListBooksRequest::default()).await.len(), 1);
    }

    async fn page_sizes_and_tokens_out_of_range_are_invalid_argument(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("pager").await;

        for request in [
            pb::ListBooksRequest { page_size: 101, ..Default::default() },
            pb::ListBooksRequest { page_size: -1, ..Default::default() },
            pb::ListBooksRequest { page_token: "bm9wZQ".to_owned(), ..Default::default() },
        ] {
            assert_eq!(app.list(&user, request).await.unwrap_err().code(), Code::InvalidArgument);
        }
    }
}
