package nexmark

// EventType says which of Event's fields is set.
type EventType int8

const (
	PersonEvent  EventType = 0
	AuctionEvent EventType = 1
	BidEvent     EventType = 2
)

func (t EventType) String() string {
	switch t {
	case PersonEvent:
		return "person"
	case AuctionEvent:
		return "auction"
	case BidEvent:
		return "bid"
	}
	return "unknown"
}

// Event is one Nexmark event: exactly one of Person, Auction and Bid is
// set, as Type says.
type Event struct {
	Type    EventType `json:"event_type"`
	Person  *Person   `json:"person,omitempty"`
	Auction *Auction  `json:"auction,omitempty"`
	Bid     *Bid      `json:"bid,omitempty"`
}

// Timestamp returns the event time (epoch ms) of the event, or 0 when the
// field of its type is missing.
func (e *Event) Timestamp() int64 {
	switch {
	case e.Bid != nil:
		return e.Bid.DateTime
	case e.Auction != nil:
		return e.Auction.DateTime
	case e.Person != nil:
		return e.Person.DateTime
	}
	return 0
}

// Person is a new user of the auction site.
type Person struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	EmailAddress string `json:"email_address"`
	CreditCard   string `json:"credit_card"`
	City         string `json:"city"`
	State        string `json:"state"`
	DateTime     int64  `json:"date_time"` // epoch ms
	Extra        string `json:"extra"`
}

// Auction is an item put up for auction by Seller.
type Auction struct {
	ID          int64  `json:"id"`
	ItemName    string `json:"item_name"`
	Description string `json:"description"`
	InitialBid  int64  `json:"initial_bid"`
	Reserve     int64  `json:"reserve"`
	DateTime    int64  `json:"date_time"` // epoch ms
	Expires     int64  `json:"expires"`   // epoch ms
	Seller      int64  `json:"seller"`
	Category    int64  `json:"category"`
	Extra       string `json:"extra"`
}

// Bid is a bid of Bidder on Auction; Price is in cents.
type Bid struct {
	Auction  int64  `json:"auction"`
	Bidder   int64  `json:"bidder"`
	Price    int64  `json:"price"`
	Channel  string `json:"channel"`
	URL      string `json:"url"`
	DateTime int64  `json:"date_time"` // epoch ms
	Extra    string `json:"extra"`
}
