from tests.factories import make_idea, make_member


async def test_home_and_idea_page_render(client):
    author = await make_member("Ada Author")
    idea_id = await make_idea(author, title="Merino wool hiking socks")
    home = await client.get("/")
    assert home.status_code == 200
    assert "Merino wool hiking socks" in home.text
    page = await client.get(f"/ideas/{idea_id}")
    assert page.status_code == 200
    assert "Merino wool hiking socks" in page.text
    assert "Log in to vote" in page.text
